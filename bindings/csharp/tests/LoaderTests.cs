using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;

namespace XeroGuard.Tests
{
    // Loading the native library. A process loads it once, so each case runs this test program again
    // (--load-probe) from a directory without the library, with LD_LIBRARY_PATH cleared.
    internal static class LoaderTests
    {
        internal const string ProbeFlag = "--load-probe";
        private const int ProbeLoadFailed = 3;

        // In the child: set the path ("-": leave the default), then use the library through several entry points.
        internal static int Probe(string path)
        {
            try
            {
                if (path != "-") Library.NativeLibraryPath = path;
                Classification c = Classifier.Classify(429, new[] { new KeyValuePair<string, string>("X-Rate-Limit-Problem", "day") }, null);
                Console.WriteLine("loaded {0} abi {1} {2} {3}", Library.Version, Library.AbiVersion, Vocabulary.Name(c.Category),
                    Vocabulary.Name(c.RateLimitProblem.Value));
                return 0;
            }
            catch (XeroGuardLoadException e)
            {
                Console.WriteLine("XeroGuardLoadException: " + e.Message);
                Console.WriteLine("places: " + e.PlacesLooked.Count + ", setting: " + (e.NativeLibraryPath ?? "null"));
                return ProbeLoadFailed;
            }
        }

        public static void Register(Runner r)
        {
            string buildDir = AppDomain.CurrentDomain.BaseDirectory;
            string root = Path.Combine(buildDir, "loader");
            string app = Path.Combine(root, "app");
            string lib = Path.Combine(root, "lib");
            string garbage = Path.Combine(root, "garbage");

            r.Run("loader/setup", () =>
            {
                if (Directory.Exists(root)) Directory.Delete(root, true);
                foreach (string dir in new[] { app, lib, garbage }) Directory.CreateDirectory(dir);
                foreach (string file in new[] { "XeroGuard.dll", "XeroGuard.Metrics.dll", "XeroGuard.Tests.exe" })
                    File.Copy(Path.Combine(buildDir, file), Path.Combine(app, file));
                File.Copy(Path.Combine(buildDir, "libxeroguard.so"), Path.Combine(lib, "libxeroguard.so"));
                File.WriteAllText(Path.Combine(garbage, "libxeroguard.so"), "not a shared library");
                Assert.True(!File.Exists(Path.Combine(app, "libxeroguard.so")), "the app directory has no library");
            });

            r.Run("loader/default_search_fails_with_places_and_fix", () =>
            {
                string output = RunProbe(app, "-", ProbeLoadFailed);
                Assert.True(output.Contains(Path.Combine(app, "libxeroguard.so") + " (not found)"), "names the assembly's directory: " + output);
                Assert.True(output.Contains("LD_LIBRARY_PATH (not set)"), "names LD_LIBRARY_PATH: " + output);
                Assert.True(output.Contains("Library.NativeLibraryPath") && output.Contains("cargo build --release"), "says how to fix it: " + output);
                Assert.True(output.Contains("setting: null"), "no override in force: " + output);
            });

            r.Run("loader/native_library_path_directory", () =>
            {
                string output = RunProbe(app, lib, 0);
                Assert.True(output.StartsWith("loaded " + Library.Version + " abi " + Library.RequiredAbiVersion + " rate_limited day", StringComparison.Ordinal), output);
            });

            r.Run("loader/native_library_path_file", () =>
            {
                string output = RunProbe(app, Path.Combine(lib, "libxeroguard.so"), 0);
                Assert.True(output.StartsWith("loaded ", StringComparison.Ordinal), output);
            });

            r.Run("loader/native_library_path_missing", () =>
            {
                string missing = Path.Combine(root, "missing");
                string output = RunProbe(app, missing, ProbeLoadFailed);
                Assert.True(output.Contains("(the file does not exist)"), "says why: " + output);
                Assert.True(output.Contains(missing + " (not found), from Library.NativeLibraryPath"), "names the setting's path: " + output);
                Assert.True(output.Contains("setting: " + missing), "the exception carries the setting: " + output);
                Assert.True(output.Contains("places: 1"), "only the override was looked at: " + output);
            });

            r.Run("loader/native_library_path_not_a_library", () =>
            {
                string output = RunProbe(app, garbage, ProbeLoadFailed);
                Assert.True(output.Contains(Path.Combine(garbage, "libxeroguard.so") + " (exists)"), "found the file: " + output);
                Assert.True(output.Contains("DllNotFoundException") && output.Contains("was found but did not load"), "and says it did not load: " + output);
            });

            r.Run("loader/small_native_callers_are_not_inlined", SmallNativeCallersAreNotInlined);

            r.Run("loader/path_is_fixed_once_loaded", () =>
            {
                Assert.Equal(Library.RequiredAbiVersion, Library.AbiVersion, "loaded in this process");
                Assert.Equal<string>(null, Library.NativeLibraryPath, "no override here");
                Assert.Throws<InvalidOperationException>(() => Library.NativeLibraryPath = lib, "too late to change it");
                Assert.Throws<ArgumentException>(() => Library.NativeLibraryPath = " ", "blank path");
                Assert.Equal<string>(null, Library.NativeLibraryPath, "unchanged");
            });
        }

        // Mono binds a P/Invoke when the method calling it is compiled, and inlines small methods across assemblies
        // (IL up to MONO_INLINELIMIT, 20 bytes by default). A small member calling the library, inlined into the
        // method that sets NativeLibraryPath, would bind before the setting runs; such members must be NoInlining.
        private static void SmallNativeCallersAreNotInlined()
        {
            const int inlineLimitWithMargin = 32;
            const BindingFlags declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance |
                BindingFlags.Static | BindingFlags.DeclaredOnly;
            Assembly lib = typeof(Classifier).Assembly;
            var small = new List<string>();
            int callers = 0;
            foreach (Type t in lib.GetTypes())
            {
                foreach (MethodBase m in t.GetMethods(declared).Cast<MethodBase>().Concat(t.GetConstructors(declared)))
                {
                    MethodBody body = m.GetMethodBody();
                    if (body == null || !CallsTheLibrary(m, body.GetILAsByteArray())) continue;
                    callers++;
                    bool noInlining = (m.MethodImplementationFlags & MethodImplAttributes.NoInlining) != 0;
                    if (body.GetILAsByteArray().Length <= inlineLimitWithMargin && !noInlining) small.Add(t.Name + "." + m.Name);
                }
            }
            Assert.True(callers > 20, "found the methods that call the library: " + callers);
            Assert.Sequence(new string[0], small, "small methods calling the library without NoInlining");
        }

        // Scans for `call` (0x28) tokens naming a P/Invoke of NativeMethods; a byte that only looks like the opcode
        // names nothing or something else, and is skipped.
        private static bool CallsTheLibrary(MethodBase m, byte[] il)
        {
            for (int i = 0; i + 4 < il.Length; i++)
            {
                if (il[i] != 0x28) continue;
                try
                {
                    MethodBase callee = m.Module.ResolveMethod(BitConverter.ToInt32(il, i + 1));
                    if (callee.DeclaringType != null && callee.DeclaringType.Name == "NativeMethods" &&
                        (callee.Attributes & MethodAttributes.PinvokeImpl) != 0)
                        return true;
                }
                catch (ArgumentException) { }
            }
            return false;
        }

        private static string RunProbe(string workDir, string path, int expectedExit)
        {
            var start = new ProcessStartInfo(Process.GetCurrentProcess().MainModule.FileName,
                string.Format("--debug \"{0}\" {1} \"{2}\"", Path.Combine(workDir, "XeroGuard.Tests.exe"), ProbeFlag, path))
            {
                WorkingDirectory = workDir,
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            start.EnvironmentVariables.Remove("LD_LIBRARY_PATH");
            using (Process child = Process.Start(start))
            {
                var stderr = child.StandardError.ReadToEndAsync();
                string stdout = child.StandardOutput.ReadToEnd();
                Assert.True(child.WaitForExit(60000), "the probe finished");
                string output = stdout + stderr.Result;
                Assert.Equal(expectedExit, child.ExitCode, "probe exit code; output: " + output);
                return output;
            }
        }
    }
}
