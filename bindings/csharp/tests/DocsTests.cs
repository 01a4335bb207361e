using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml;

namespace XeroGuard.Tests
{
    // The documentation: an XML doc for every public member (run-tests.sh also compiles with -doc and fails on
    // CS1591), and the README's C# compiling against this build.
    internal static class DocsTests
    {
        public static void Register(Runner r)
        {
            string buildDir = AppDomain.CurrentDomain.BaseDirectory;
            string csharpDir = Path.GetFullPath(Path.Combine(buildDir, ".."));

            r.Run("docs/every_public_member_has_a_summary", () =>
                EveryPublicMemberHasASummary(Path.Combine(buildDir, "XeroGuard.xml")));
            r.Run("docs/readme_csharp_compiles", () =>
                ReadmeCompiles(Path.Combine(csharpDir, "README.md"), Path.Combine(csharpDir, "tests", "docs", "StandIns.cs"), buildDir));
        }

        private static void EveryPublicMemberHasASummary(string xmlFile)
        {
            Assert.True(File.Exists(xmlFile), "the doc file run-tests.sh makes: " + xmlFile);
            var doc = new XmlDocument();
            doc.Load(xmlFile);
            var summaries = new Dictionary<string, string>();
            foreach (XmlElement member in doc.SelectNodes("/doc/members/member"))
            {
                XmlNode summary = member.SelectSingleNode("summary");
                summaries[member.GetAttribute("name")] = summary == null ? "" : summary.InnerText.Trim();
            }
            var missing = new List<string>();
            int checkedMembers = 0;
            foreach (string id in VisibleMemberIds(typeof(Classifier).Assembly))
            {
                checkedMembers++;
                string text;
                if (!summaries.TryGetValue(id, out text) || text.Length == 0) missing.Add(id);
            }
            Assert.True(checkedMembers > 150, "public members checked: " + checkedMembers);
            Assert.Sequence(new string[0], missing, "public members without a summary");
        }

        // Documentation ids (T:, M:, P:, F:) of everything another assembly can see.
        private static IEnumerable<string> VisibleMemberIds(Assembly assembly)
        {
            const BindingFlags declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance |
                BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (Type t in assembly.GetExportedTypes())
            {
                string type = TypeName(t);
                yield return "T:" + type;
                Func<MethodBase, bool> visible = m => m.IsPublic || ((m.IsFamily || m.IsFamilyOrAssembly) && !t.IsSealed);
                foreach (FieldInfo f in t.GetFields(declared).Where(f => f.IsPublic && !f.IsSpecialName))
                    yield return "F:" + type + "." + f.Name;
                foreach (PropertyInfo p in t.GetProperties(declared).Where(p => p.GetAccessors(true).Any(visible)))
                    yield return "P:" + type + "." + p.Name;
                foreach (ConstructorInfo c in t.GetConstructors(declared).Where(c => visible(c)))
                    yield return "M:" + type + ".#ctor" + Parameters(c);
                foreach (MethodInfo m in t.GetMethods(declared).Where(m => visible(m) && !m.IsSpecialName))
                    yield return "M:" + type + "." + m.Name + (m.IsGenericMethod ? "``" + m.GetGenericArguments().Length : "") + Parameters(m);
            }
        }

        private static string TypeName(Type t)
        {
            return t.FullName.Replace('+', '.');
        }

        private static string Parameters(MethodBase m)
        {
            ParameterInfo[] ps = m.GetParameters();
            return ps.Length == 0 ? "" : "(" + string.Join(",", ps.Select(p => ParameterType(p.ParameterType))) + ")";
        }

        private static string ParameterType(Type t)
        {
            if (t.IsByRef) return ParameterType(t.GetElementType()) + "@";
            if (t.IsArray) return ParameterType(t.GetElementType()) + "[]";
            if (t.IsGenericParameter) return (t.DeclaringMethod != null ? "``" : "`") + t.GenericParameterPosition;
            if (t.IsGenericType)
            {
                string name = t.GetGenericTypeDefinition().FullName;
                return name.Substring(0, name.IndexOf('`')).Replace('+', '.') + "{" +
                    string.Join(",", t.GetGenericArguments().Select(ParameterType)) + "}";
            }
            return TypeName(t);
        }

        // Every ```csharp block of the README (complete programs, and the ```csharp fragment recipes that the packaging
        // docs test leaves to this one), compiled against this build of XeroGuard.dll (and stand-ins for the
        // packages its recipes use). A block that declares a type is a file; any other block is the body of an
        // async method given `tenantId` and `accessToken`. A block's leading using lines go to the top of its file.
        private static void ReadmeCompiles(string readme, string standIns, string buildDir)
        {
            string outDir = Path.Combine(buildDir, "readme");
            if (Directory.Exists(outDir)) Directory.Delete(outDir, true);
            Directory.CreateDirectory(outDir);
            var blocks = Regex.Matches(File.ReadAllText(readme), "```csharp( fragment)?\n(.*?)```", RegexOptions.Singleline)
                .Cast<Match>().Select(m => m.Groups[2].Value).ToList();
            Assert.True(blocks.Count >= 4, "the README has its C# blocks: " + blocks.Count);
            var files = new List<string> { standIns };
            for (int i = 0; i < blocks.Count; i++)
            {
                string[] lines = blocks[i].Split('\n');
                int usingCount = lines.TakeWhile(l => Regex.IsMatch(l, @"^using [A-Za-z0-9_.]+;\s*$") || l.Trim().Length == 0).Count();
                string usings = string.Join("\n", lines.Take(usingCount));
                string body = string.Join("\n", lines.Skip(usingCount));
                bool declaresType = Regex.IsMatch(body, @"^(public |internal )?(static |sealed )*class ", RegexOptions.Multiline);
                string source = declaresType ? usings + "\n" + body : usings + "\ninternal static class ReadmeBlock" + i +
                    "\n{\n    internal static async System.Threading.Tasks.Task Run(string tenantId, string accessToken)\n    {\n" +
                    body + "\n    }\n}\n";
                string file = Path.Combine(outDir, "block" + i + ".cs");
                File.WriteAllText(file, "#line 1 \"README.md block " + i + "\"\n" + source);
                files.Add(file);
            }
            // XeroGuard.Metrics.dll: LimiterMetrics (.NET 6 code) as run-tests.sh compiles it, against Meter stand-ins.
            string references = string.Join(" ", new[] { "System.dll", "System.Core.dll", "System.Net.Http.dll", "Microsoft.CSharp.dll" }
                .Select(a => "-r:" + a)) + " -r:\"" + Path.Combine(buildDir, "XeroGuard.dll") + "\"" +
                " -r:\"" + Path.Combine(buildDir, "XeroGuard.Metrics.dll") + "\"";
            var start = new ProcessStartInfo("mcs", "-nologo -target:library -nowarn:1998 -out:\"" + Path.Combine(outDir, "Readme.dll") + "\" " +
                references + " " + string.Join(" ", files.Select(f => "\"" + f + "\"")))
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using (Process mcs = Process.Start(start))
            {
                var stderr = mcs.StandardError.ReadToEndAsync();
                string output = mcs.StandardOutput.ReadToEnd();
                Assert.True(mcs.WaitForExit(120000), "mcs finished");
                Assert.Equal(0, mcs.ExitCode, "the README's C# compiles:\n" + output + stderr.Result);
            }
        }
    }
}
