namespace XeroGuard
{
    /// <summary>The loaded native library.</summary>
    public static class Library
    {
        /// <summary>The native library's version, e.g. "0.1.0".</summary>
        public static string Version
        {
            get { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_version()); }
        }

        /// <summary>The ABI version of the loaded library (this binding requires <see cref="RequiredAbiVersion"/>).</summary>
        public static int AbiVersion
        {
            get { return (int)NativeMethods.xg_abi_version(); }
        }

        public static int RequiredAbiVersion
        {
            get { return (int)Native.AbiVersion; }
        }
    }
}
