using System;
using System.Runtime.CompilerServices;

namespace XeroGuard
{
    /// <summary>One rolling window: at most <see cref="Limit"/> calls in any <see cref="WindowMs"/>, widened by <see cref="MarginMs"/>. Limit 0 disables it.</summary>
    public sealed class WindowLimit
    {
        /// <summary>A window of at most <paramref name="limit"/> calls in any <paramref name="windowMs"/>, counted as if each call lasted <paramref name="marginMs"/> longer (room for clock skew and transit).</summary>
        public WindowLimit(int limit, long windowMs, long marginMs)
        {
            if (limit < 0) throw new ArgumentOutOfRangeException("limit", limit, "must not be negative");
            Native.CheckedMs(windowMs, "windowMs");
            Native.CheckedMs(marginMs, "marginMs");
            Limit = limit;
            WindowMs = windowMs;
            MarginMs = marginMs;
        }

        internal WindowLimit(XgWindowLimit w)
            : this((int)Math.Min(w.Limit, int.MaxValue), Native.ClampToLong(w.WindowMs), Native.ClampToLong(w.MarginMs)) { }

        /// <summary>The most calls in any window (0: the window is not enforced).</summary>
        public int Limit { get; private set; }
        /// <summary>The window's length in milliseconds.</summary>
        public long WindowMs { get; private set; }
        /// <summary>Extra time each call is counted for, so the server's count never sees more than the limit.</summary>
        public long MarginMs { get; private set; }

        internal XgWindowLimit ToNative()
        {
            return new XgWindowLimit { Limit = (uint)Limit, WindowMs = (ulong)WindowMs, MarginMs = (ulong)MarginMs };
        }

        /// <summary>"limit/window ms (+margin ms)".</summary>
        public override string ToString()
        {
            return string.Format("{0}/{1} ms (+{2} ms)", Limit, WindowMs, MarginMs);
        }
    }

    /// <summary>
    /// Limiter configuration mirroring xg_limits. A new instance holds the library's defaults (xg_limits_default:
    /// Xero's published limits with small margins); the library validates the values when a limiter is created.
    /// </summary>
    public sealed class Limits
    {
        /// <summary>The library's defaults (xg_limits_default): Xero's published limits with small margins.</summary>
        public Limits() : this(LoadDefault()) { }

        internal Limits(XgLimits l)
        {
            TenantMinute = new WindowLimit(l.TenantMinute);
            TenantDay = new WindowLimit(l.TenantDay);
            TenantConcurrency = (int)Math.Min(l.TenantConcurrency, int.MaxValue);
            AppMinute = new WindowLimit(l.AppMinute);
            PermitTimeoutMs = Native.ClampToLong(l.PermitTimeoutMs);
            MaxTenants = (int)Math.Min(l.MaxTenants, int.MaxValue);
        }

        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        private static XgLimits LoadDefault()
        {
            Native.EnsureAbi();
            return NativeMethods.xg_limits_default();
        }

        /// <summary>Xero's limits exactly, with no margins (xg_limits_exact).</summary>
        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        public static Limits Exact()
        {
            Native.EnsureAbi();
            return new Limits(NativeMethods.xg_limits_exact());
        }

        /// <summary>The tenant's rolling minute (Xero: 60 calls).</summary>
        public WindowLimit TenantMinute { get; set; }
        /// <summary>The tenant's rolling day (Xero: 5,000 calls on most plans).</summary>
        public WindowLimit TenantDay { get; set; }
        /// <summary>Calls in flight per tenant (0 = unlimited).</summary>
        public int TenantConcurrency { get; set; }
        /// <summary>The app's rolling minute across all tenants (Xero: 10,000 calls).</summary>
        public WindowLimit AppMinute { get; set; }
        /// <summary>A permit not released within this time expires.</summary>
        public long PermitTimeoutMs { get; set; }
        /// <summary>The most tenants tracked at once (0 = no cap).</summary>
        public int MaxTenants { get; set; }

        internal XgLimits ToNative()
        {
            if (TenantMinute == null || TenantDay == null || AppMinute == null)
                throw new ArgumentException("every window limit must be set (use limit 0 to disable one)");
            if (TenantConcurrency < 0) throw new ArgumentOutOfRangeException("TenantConcurrency", TenantConcurrency, "must not be negative");
            if (MaxTenants < 0) throw new ArgumentOutOfRangeException("MaxTenants", MaxTenants, "must not be negative");
            return new XgLimits
            {
                StructSize = Native.SizeOf<XgLimits>(),
                TenantMinute = TenantMinute.ToNative(),
                TenantDay = TenantDay.ToNative(),
                TenantConcurrency = (uint)TenantConcurrency,
                AppMinute = AppMinute.ToNative(),
                PermitTimeoutMs = Native.CheckedMs(PermitTimeoutMs, "PermitTimeoutMs"),
                MaxTenants = (uint)MaxTenants,
            };
        }
    }

    /// <summary>A tenant's own limits (e.g. its plan's daily limit); windows and margins stay the limiter's.</summary>
    public sealed class TenantLimits
    {
        /// <summary>A tenant's own limits, replacing the limiter's three for that tenant; 0 means no limit, as in <see cref="Limits"/>.</summary>
        public TenantLimits(int minuteLimit, int dayLimit, int concurrency)
        {
            if (minuteLimit < 0) throw new ArgumentOutOfRangeException("minuteLimit");
            if (dayLimit < 0) throw new ArgumentOutOfRangeException("dayLimit");
            if (concurrency < 0) throw new ArgumentOutOfRangeException("concurrency");
            MinuteLimit = minuteLimit;
            DayLimit = dayLimit;
            Concurrency = concurrency;
        }

        /// <summary>Calls per minute for this tenant.</summary>
        public int MinuteLimit { get; private set; }
        /// <summary>Calls per day for this tenant.</summary>
        public int DayLimit { get; private set; }
        /// <summary>Calls in flight for this tenant.</summary>
        public int Concurrency { get; private set; }
    }
}
