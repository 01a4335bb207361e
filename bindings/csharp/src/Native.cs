using System;
using System.Runtime.InteropServices;
using System.Text;

namespace XeroGuard
{
    // Status checking, string conversion and the one-time ABI check shared by the public classes.
    internal static class Native
    {
        // The ABI this binding was written against (XG_ABI_VERSION), and its version (the crate's: one version for
        // every package, tied by tests/packaging/test_versions.py).
        internal const uint AbiVersion = 3;
        internal const string BindingVersion = "0.1.0";

        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);
        private static readonly object AbiLock = new object();
        private static volatile bool abiChecked;

        // Called before the first real call; a library that does not serve this binding would corrupt memory rather
        // than fail.
        internal static void EnsureAbi()
        {
            if (abiChecked) return;
            lock (AbiLock)
            {
                if (abiChecked) return;
                uint abi = NativeLoader.AbiVersion();
                string version = StaticString(NativeMethods.xg_version()) ?? "";
                string why = Refusal(version, abi, abi >= 3 ? NativeMethods.xg_abi_oldest_version() : abi);
                if (why != null) throw new AbiMismatchException(why);
                abiChecked = true;
            }
        }

        // Why a library of `version` serving ABIs `oldest` to `abi` cannot serve this binding, or null when it can:
        // its range must hold AbiVersion, and it must be at least as new as the binding (an older one lacks what
        // later versions added).
        internal static string Refusal(string version, uint abi, uint oldest)
        {
            string fix = string.Format(
                "use the libxeroguard this binding came with, or one of version {0} or later (Library.NativeLibraryPath)",
                BindingVersion);
            if (oldest > AbiVersion || abi < AbiVersion)
            {
                string served = oldest == abi ? abi.ToString() : string.Format("{0} to {1}", oldest, abi);
                return string.Format("libxeroguard {0} serves ABI {1} but this binding needs ABI {2}; {3}",
                    version, served, AbiVersion, fix);
            }
            if (CompareVersions(version, BindingVersion) < 0)
            {
                return string.Format("libxeroguard {0} is older than this binding ({1}); {2}", version, BindingVersion, fix);
            }
            return null;
        }

        // Compares "major.minor.patch" versions (a pre-release suffix is ignored; a missing part is 0).
        internal static int CompareVersions(string a, string b)
        {
            int[] x = VersionParts(a), y = VersionParts(b);
            for (int i = 0; i < 3; i++)
            {
                if (x[i] != y[i]) return x[i].CompareTo(y[i]);
            }
            return 0;
        }

        private static int[] VersionParts(string version)
        {
            string[] parts = version.Split('-')[0].Split('.');
            var numbers = new int[3];
            for (int i = 0; i < 3 && i < parts.Length; i++)
            {
                int.TryParse(parts[i], out numbers[i]);
            }
            return numbers;
        }

        internal static uint SizeOf<T>() where T : struct
        {
            return (uint)Marshal.SizeOf(typeof(T));
        }

        // Maps a non-OK xg_status to its exception, with the calling thread's last error message.
        internal static void Ensure(int status)
        {
            if (status == NativeMethods.StatusOk) return;
            string name = StaticString(NativeMethods.xg_status_name(status)) ?? "unknown_status";
            string message = LastErrorMessage();
            if (string.IsNullOrEmpty(message)) message = name;
            switch (status)
            {
                case 2: throw new InvalidUtf8Exception(status, name, message);
                case 3: throw new InvalidArgumentException(status, name, message);
                case 4: throw new MalformedResponseException(status, name, message);
                case 6: throw new TooLargeException(status, name, message);
                case 7: throw new UnknownPermitException(status, name, message);
                case 8: throw new UnknownReservationException(status, name, message);
                case 9: throw new TooManyTenantsException(status, name, message);
                case 10: throw new WrongClockException(status, name, message);
                case 11: throw new LimiterInterruptedException(status, name, message);
                case 12: throw new BookingTooFarException(status, name, message);
                case 13: throw new StoreUnavailableException(status, name, message);
                case 14: throw new StoreException(status, name, message);
                case 15: throw new UnknownFieldsException(status, name, message);
                case 16: throw new StoreAuthException(status, name, message);
                case 17: throw new StoreForbiddenException(status, name, message);
                case 18: throw new LimitsDifferException(status, name, message);
                case 19: throw new NoStoredLimitsException(status, name, message);
                case 99: throw new NativePanicException(status, name, message);
                default: throw new XeroGuardException(status, name, message);
            }
        }

        internal static string LastErrorMessage()
        {
            UIntPtr needed;
            NativeMethods.xg_last_error_message(null, UIntPtr.Zero, out needed);
            // The message can only grow between the two calls if another call intervenes on this thread; none does.
            var buf = new byte[Math.Max(1, (int)needed.ToUInt64())];
            NativeMethods.xg_last_error_message(buf, (UIntPtr)buf.Length, out needed);
            int len = Array.IndexOf(buf, (byte)0);
            return Encoding.UTF8.GetString(buf, 0, len < 0 ? buf.Length : len);
        }

        // A refusal in the library's words: "day limit: next call in 11 h 59 min" (xg_refusal_words).
        internal static string RefusalWords(Reason reason, ulong waitMs)
        {
            EnsureAbi();
            var buf = new byte[128];
            UIntPtr needed;
            int status = NativeMethods.xg_refusal_words((uint)reason, waitMs, 0, buf, (UIntPtr)buf.Length, out needed);
            if (status == NativeMethods.StatusBufferTooSmall)
            {
                buf = new byte[(int)needed.ToUInt64()];
                status = NativeMethods.xg_refusal_words((uint)reason, waitMs, 0, buf, (UIntPtr)buf.Length, out needed);
            }
            return BufferText(status, buf);
        }

        // A duration in the library's words: "1 min 30 s" (xg_duration_words). Durations are short: 64 bytes hold any.
        internal static string DurationWords(ulong ms)
        {
            EnsureAbi();
            var buf = new byte[64];
            UIntPtr needed;
            return BufferText(NativeMethods.xg_duration_words(ms, buf, (UIntPtr)buf.Length, out needed), buf);
        }

        // The NUL-terminated text a library function wrote into `buf` (as xg_last_error_message writes), once its
        // status says it fit.
        private static string BufferText(int status, byte[] buf)
        {
            Ensure(status);
            int len = Array.IndexOf(buf, (byte)0);
            return Encoding.UTF8.GetString(buf, 0, len < 0 ? buf.Length : len);
        }

        // A NUL-terminated UTF-8 string the library owns forever (names, version); null stays null.
        internal static string StaticString(IntPtr ptr)
        {
            if (ptr == IntPtr.Zero) return null;
            int len = 0;
            while (Marshal.ReadByte(ptr, len) != 0) len++;
            var bytes = new byte[len];
            Marshal.Copy(ptr, bytes, 0, len);
            return Encoding.UTF8.GetString(bytes);
        }

        // Copies a library-owned string (JSON) into a byte array and frees it with xg_string_free.
        internal static byte[] TakeString(IntPtr ptr)
        {
            if (ptr == IntPtr.Zero) return new byte[0];
            try
            {
                int len = 0;
                while (Marshal.ReadByte(ptr, len) != 0) len++;
                var bytes = new byte[len];
                Marshal.Copy(ptr, bytes, 0, len);
                return bytes;
            }
            finally
            {
                NativeMethods.xg_string_free(ptr);
            }
        }

        // UTF-8 bytes for text arguments; strict, so a lone surrogate fails here instead of turning into U+FFFD.
        // A tenant id as the library takes it. Null is refused: a call without a tenant says so with
        // Limiter.Tenantless (""), so a missing id is never silently counted against the app window only.
        internal static byte[] Tenant(string tenantId)
        {
            if (tenantId == null)
            {
                throw new ArgumentNullException("tenantId",
                    "a tenant id is required; a call without a tenant (/connections) passes Limiter.Tenantless");
            }
            return Utf8(tenantId);
        }

        internal static byte[] Utf8(string text)
        {
            if (string.IsNullOrEmpty(text)) return null;
            try
            {
                return StrictUtf8.GetBytes(text);
            }
            catch (EncoderFallbackException e)
            {
                throw new ArgumentException("text is not valid Unicode: " + e.Message, "text");
            }
        }

        internal static UIntPtr Len(byte[] bytes)
        {
            return (UIntPtr)(bytes == null ? 0 : bytes.Length);
        }

        internal static ulong CheckedMs(long ms, string paramName)
        {
            if (ms < 0) throw new ArgumentOutOfRangeException(paramName, ms, "must not be negative");
            return (ulong)ms;
        }

        internal static long ClampToLong(ulong value)
        {
            return value > long.MaxValue ? long.MaxValue : (long)value;
        }

        // Whole milliseconds, rounded up so a positive duration never becomes 0; Timeout.InfiniteTimeSpan is "never".
        internal static ulong TimeoutMs(TimeSpan timeout, string paramName)
        {
            if (timeout == System.Threading.Timeout.InfiniteTimeSpan) return NativeMethods.NoDeadline;
            if (timeout < TimeSpan.Zero)
                throw new ArgumentOutOfRangeException(paramName, timeout, "must not be negative (or Timeout.InfiniteTimeSpan)");
            return DurationMs(timeout);
        }

        internal static ulong DurationMs(TimeSpan duration)
        {
            return (ulong)((duration.Ticks + TimeSpan.TicksPerMillisecond - 1) / TimeSpan.TicksPerMillisecond);
        }

        // Milliseconds as a TimeSpan, saturating where TimeSpan ends.
        internal static TimeSpan Duration(ulong ms)
        {
            const ulong longest = (ulong)(long.MaxValue / TimeSpan.TicksPerMillisecond);
            return ms >= longest ? TimeSpan.MaxValue : TimeSpan.FromTicks((long)ms * TimeSpan.TicksPerMillisecond);
        }

        // Task.Delay takes at most int.MaxValue ms (about 24.8 days).
        internal static TimeSpan DelayFor(ulong ms)
        {
            return TimeSpan.FromMilliseconds(Math.Min(ms, (ulong)int.MaxValue));
        }
    }
}
