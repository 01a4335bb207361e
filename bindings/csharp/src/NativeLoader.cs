using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace XeroGuard
{
    // Where the native library comes from: the Library.NativeLibraryPath override, installed the way the running
    // runtime allows, and on a failed first call a XeroGuardLoadException saying where it was looked for.
    //   .NET Core 3+ / .NET 5+: a DllImportResolver (NativeLibrary, found by reflection: netstandard2.0 lacks it).
    //   Mono: a dllmap entry (mono_dllmap_insert). Preloading with dlopen does not help there: the library has no
    //         SONAME, so a later dlopen("libxeroguard.so") does not match the copy already loaded.
    //   .NET Framework on Windows: LoadLibrary of the file before the first call; DllImport then finds the module
    //         already loaded under its name.
    internal static class NativeLoader
    {
        internal const string DllImportName = "xeroguard";

        private static readonly object Gate = new object();
        private static string pathSetting;
        private static string overrideFile;
        private static int firstCallMade;
        private static bool resolverInstalled;
        private static MethodInfo coreClrLoad;

        private static bool IsWindows { get { return Path.DirectorySeparatorChar == '\\'; } }
        // Without RuntimeInformation, which the class libraries Mono's mcs builds against here do not have.
        private static bool IsMacOS { get { return !IsWindows && Directory.Exists("/System/Library/CoreServices"); } }
        private static bool IsMono { get { return Type.GetType("Mono.Runtime") != null; } }

        internal static string PathSetting
        {
            get { lock (Gate) return pathSetting; }
        }

        internal static void SetPath(string value)
        {
            if (value != null && value.Trim().Length == 0)
                throw new ArgumentException("NativeLibraryPath must name a file or a directory (or be null)", "value");
            lock (Gate)
            {
                if (Volatile.Read(ref firstCallMade) != 0)
                {
                    throw new InvalidOperationException("Library.NativeLibraryPath must be set before the first XeroGuard call; " +
                        "the native library was already looked up");
                }
                pathSetting = value;
                Volatile.Write(ref overrideFile, value == null ? null : FileNamedBy(value));
                // Installed now, not at the first call: Mono binds a P/Invoke when the method calling it is compiled.
                if (!InstallCoreClrResolver() && IsMono) MonoDllMap(overrideFile ?? DllImportName);
            }
        }

        // The first call into the library. Later calls bind the same way, so only this one needs watching.
        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static uint AbiVersion()
        {
            string file;
            lock (Gate)
            {
                Volatile.Write(ref firstCallMade, 1);
                file = overrideFile;
            }
            if (file != null && !File.Exists(file)) throw Failure(null, file);
            if (file != null && IsWindows && !IsMono && !resolverInstalled) PreloadOnWindows(file);
            try
            {
                return NativeMethods.xg_abi_version();
            }
            catch (DllNotFoundException e)
            {
                throw Failure(e, file);
            }
            catch (EntryPointNotFoundException e)
            {
                throw Failure(e, file);
            }
            catch (BadImageFormatException e)
            {
                throw Failure(e, file);
            }
        }

        // A directory stands for the platform's file name in it.
        private static string FileNamedBy(string setting)
        {
            string full = Path.GetFullPath(setting);
            return Directory.Exists(full) ? Path.Combine(full, PlatformFileName) : full;
        }

        private static string PlatformFileName
        {
            get { return IsWindows ? "xeroguard.dll" : IsMacOS ? "libxeroguard.dylib" : "libxeroguard.so"; }
        }

        private static string SearchPathVariable
        {
            get { return IsWindows ? "PATH" : IsMacOS ? "DYLD_LIBRARY_PATH" : "LD_LIBRARY_PATH"; }
        }

        private static bool InstallCoreClrResolver()
        {
            if (resolverInstalled) return true;
            Assembly coreLib = typeof(object).Assembly;
            Type nativeLibrary = coreLib.GetType("System.Runtime.InteropServices.NativeLibrary");
            Type resolverType = coreLib.GetType("System.Runtime.InteropServices.DllImportResolver");
            if (nativeLibrary == null || resolverType == null) return false;
            MethodInfo setResolver = nativeLibrary.GetMethod("SetDllImportResolver", new[] { typeof(Assembly), resolverType });
            MethodInfo load = nativeLibrary.GetMethod("Load", new[] { typeof(string) });
            if (setResolver == null || load == null) return false;
            MethodInfo resolve = typeof(NativeLoader).GetMethod("ResolveOnCoreClr", BindingFlags.NonPublic | BindingFlags.Static);
            Delegate resolver = Delegate.CreateDelegate(resolverType, resolve);
            setResolver.Invoke(null, new object[] { typeof(NativeLoader).Assembly, resolver });
            coreClrLoad = load;
            resolverInstalled = true;
            return true;
        }

        // A DllImportResolver: the override's file for this library; IntPtr.Zero leaves the runtime's usual search.
        private static IntPtr ResolveOnCoreClr(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
        {
            string file = Volatile.Read(ref overrideFile);
            if (file == null || libraryName != DllImportName) return IntPtr.Zero;
            try
            {
                return (IntPtr)coreClrLoad.Invoke(null, new object[] { file });
            }
            catch (TargetInvocationException e) when (e.InnerException != null)
            {
                ExceptionDispatchInfo.Capture(e.InnerException).Throw();
                throw;
            }
        }

        [DllImport("__Internal", CharSet = CharSet.Ansi)]
        private static extern void mono_dllmap_insert(IntPtr assembly, string dll, string func, string tdll, string tfunc);

        // Later entries win, so setting the path again (or back to null) replaces the mapping.
        private static void MonoDllMap(string target)
        {
            mono_dllmap_insert(IntPtr.Zero, DllImportName, null, target, null);
        }

        [DllImport("kernel32", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern IntPtr LoadLibraryW(string path);

        private static void PreloadOnWindows(string file)
        {
            if (LoadLibraryW(file) == IntPtr.Zero)
            {
                var cause = new DllNotFoundException("LoadLibrary failed with Windows error " + Marshal.GetLastWin32Error());
                throw Failure(cause, file);
            }
        }

        private static XeroGuardLoadException Failure(Exception cause, string file)
        {
            var places = new List<string>();
            string[] files = file != null
                ? new[] { file }
                : UsualDirectories().Select(dir => Path.Combine(dir, PlatformFileName)).ToArray();
            string origin = file != null ? ", from Library.NativeLibraryPath" : "";
            foreach (string f in files) places.Add(f + (File.Exists(f) ? " (exists)" : " (not found)") + origin);
            if (file == null)
            {
                string value = Environment.GetEnvironmentVariable(SearchPathVariable);
                places.Add(string.IsNullOrEmpty(value)
                    ? SearchPathVariable + " (not set)"
                    : "the directories on " + SearchPathVariable + ": " + value);
                places.Add(IsWindows
                    ? "the Windows system directories"
                    : "the system's library directories (/etc/ld.so.cache, /lib, /usr/lib)");
            }

            string why = cause == null ? "the file does not exist" : cause.GetType().Name + ": " + cause.Message;
            var message = new System.Text.StringBuilder();
            message.AppendFormat("The xeroguard native library ({0}) could not be loaded ({1}).", PlatformFileName, why)
                .AppendLine();
            message.AppendLine("Looked for it in:");
            foreach (string place in places) message.Append("  - ").AppendLine(place);
            if (cause != null && files.Any(File.Exists))
            {
                message.AppendLine("A file was found but did not load: it may be built for another platform or " +
                    "architecture, need a library that is missing, or not be xeroguard at all.");
            }
            message.AppendFormat("To fix it: build it (cargo build --release in the xeroguard repository makes " +
                "target/release/{0}), then put it next to XeroGuard.dll, or set XeroGuard.Library.NativeLibraryPath to the " +
                "file or its directory before the first XeroGuard call, or add its directory to {1}.", PlatformFileName,
                SearchPathVariable);
            return new XeroGuardLoadException(message.ToString(), places, PathSetting, cause);
        }

        private static IEnumerable<string> UsualDirectories()
        {
            var dirs = new List<string>();
            string location = typeof(NativeLoader).Assembly.Location;
            if (!string.IsNullOrEmpty(location)) dirs.Add(Path.GetDirectoryName(location));
            string appBase = AppDomain.CurrentDomain.BaseDirectory;
            if (!string.IsNullOrEmpty(appBase)) dirs.Add(appBase.TrimEnd(Path.DirectorySeparatorChar));
            return dirs.Distinct(StringComparer.Ordinal);
        }
    }
}
