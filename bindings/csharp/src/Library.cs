using System;
using System.Runtime.CompilerServices;

namespace XeroGuard
{
    /// <summary>The native library: where it is loaded from, and its version.</summary>
    public static class Library
    {
        /// <summary>
        /// Where to load the native library from: its file, or a directory holding it (<c>libxeroguard.so</c>,
        /// <c>libxeroguard.dylib</c> or <c>xeroguard.dll</c>). Null, the default, leaves the runtime's usual search
        /// (next to XeroGuard.dll, <c>runtimes/&lt;rid&gt;/native</c> in a package, the system's library path). Set it
        /// before the first XeroGuard call; once the library has been looked up, setting it throws
        /// <see cref="InvalidOperationException"/>. A library that cannot be loaded makes the first call throw
        /// <see cref="XeroGuardLoadException"/>, which lists where it was looked for.
        /// </summary>
        public static string NativeLibraryPath
        {
            get { return NativeLoader.PathSetting; }
            set { NativeLoader.SetPath(value); }
        }

        // NoInlining: see Vocabulary.Name.

        /// <summary>The native library's version, e.g. "0.1.0".</summary>
        public static string Version
        {
            [MethodImpl(MethodImplOptions.NoInlining)]
            get { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_version()); }
        }

        /// <summary>The ABI version of the loaded library (this binding requires <see cref="RequiredAbiVersion"/>).</summary>
        public static int AbiVersion
        {
            [MethodImpl(MethodImplOptions.NoInlining)]
            get { return (int)NativeLoader.AbiVersion(); }
        }

        /// <summary>The ABI version this binding was written for (xg_abi_version() must return it).</summary>
        public static int RequiredAbiVersion
        {
            get { return (int)Native.AbiVersion; }
        }
    }
}
