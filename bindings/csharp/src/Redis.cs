using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace XeroGuard
{
    /// <summary>
    /// Where a shared limiter keeps its state (Redis or Valkey) and what it does without it; pass it to
    /// <c>new Limiter(limits, redisOptions)</c>. A new instance holds the library's defaults
    /// (xg_redis_options_default); set <see cref="KeyPrefix"/>. Values are checked when set (and by the library when the
    /// limiter is created), so a bad one is an <see cref="ArgumentException"/> before anything is connected.
    /// </summary>
    public sealed class RedisOptions
    {
        private string keyPrefix;
        private TimeSpan deadline;
        private TimeSpan breakerCooldown;
        private FailurePolicy onStoreError;
        private int workers;
        private string tlsCaFile;

        /// <summary>
        /// Options for the store at <paramref name="url"/>: <c>redis://[user:password@]host:port[/db]</c>,
        /// <c>rediss://…</c> (TLS), <c>redis+unix:///path/to/socket</c>, or a cluster as
        /// <c>redis+cluster://host:port,host:port</c> (<c>rediss+cluster://</c> with TLS).
        /// </summary>
        public RedisOptions(string url)
        {
            if (string.IsNullOrWhiteSpace(url)) throw new ArgumentException("a Redis URL is required", nameof(url));
            Url = url;
            XgRedisOptions d = LoadDefault();
            deadline = Native.Duration(d.DeadlineMs);
            breakerCooldown = Native.Duration(d.BreakerCooldownMs);
            onStoreError = (FailurePolicy)d.OnStoreError;
            workers = (int)Math.Min(d.Workers, int.MaxValue);
            ReplaceLimits = d.ReplaceLimits == NativeMethods.StoredLimitsReplace;
            AdoptStoredLimits = d.ReplaceLimits == NativeMethods.StoredLimitsAdopt;
        }

        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        private static XgRedisOptions LoadDefault()
        {
            Native.EnsureAbi();
            return NativeMethods.xg_redis_options_default();
        }

        /// <summary>The store's URL.</summary>
        public string Url { get; private set; }

        /// <summary>
        /// Required: every process using the same prefix (one per Xero app) shares windows, permits, blocks and limits.
        /// At most 128 bytes.
        /// </summary>
        public string KeyPrefix
        {
            get { return keyPrefix; }
            set
            {
                if (string.IsNullOrEmpty(value)) throw new ArgumentException("KeyPrefix must not be empty", nameof(value));
                keyPrefix = value;
            }
        }

        /// <summary>The longest one store operation may take (connect, write, read, one retry); the library's default is 250 ms, its maximum 10 s.</summary>
        public TimeSpan Deadline
        {
            get { return deadline; }
            set
            {
                if (value <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(value), value, "Deadline must be positive");
                deadline = value;
            }
        }

        /// <summary>After 3 failures in a row the store is not asked again for this long (default 1 s), then one probe goes; meanwhile <see cref="OnStoreError"/> decides.</summary>
        public TimeSpan BreakerCooldown
        {
            get { return breakerCooldown; }
            set
            {
                if (value < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(value), value, "BreakerCooldown must not be negative");
                breakerCooldown = value;
            }
        }

        /// <summary>What a call gets while the store cannot be reached (default <see cref="FailurePolicy.Closed"/>: refused).</summary>
        public FailurePolicy OnStoreError
        {
            get { return onStoreError; }
            set
            {
                if (!Enum.IsDefined(typeof(FailurePolicy), value))
                    throw new ArgumentOutOfRangeException(nameof(value), value, "not a FailurePolicy");
                onStoreError = value;
            }
        }

        /// <summary>For <see cref="FailurePolicy.Local"/>: how many processes share the limits (each keeps limit / workers, at least 1). Default 1.</summary>
        public int Workers
        {
            get { return workers; }
            set
            {
                if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), value, "Workers must be at least 1");
                workers = value;
            }
        }

        /// <summary>
        /// Write this limiter's limits into the store even if it holds others. Without it (or
        /// <see cref="AdoptStoredLimits"/>), limits that differ from the stored ones are a <see cref="LimitsDifferException"/>.
        /// </summary>
        public bool ReplaceLimits { get; set; }

        /// <summary>
        /// Pace by the limits stored for the prefix when they differ from the ones given (<see cref="Limiter.Limits"/>
        /// then reports them). Not with <see cref="ReplaceLimits"/> (an <see cref="ArgumentException"/> when created).
        /// </summary>
        public bool AdoptStoredLimits { get; set; }

        /// <summary>Optional: a PEM file of certificate authorities to trust for <c>rediss://</c> (null: the system's).</summary>
        public string TlsCaFile
        {
            get { return tlsCaFile; }
            set
            {
                if (value != null && value.Trim().Length == 0)
                    throw new ArgumentException("TlsCaFile must name a file (or be null)", nameof(value));
                tlsCaFile = value;
            }
        }

        /// <summary>The URL without its password, the prefix and the failure policy.</summary>
        public override string ToString()
        {
            string url = Url;
            int at = url.IndexOf('@');
            int scheme = url.IndexOf("://", StringComparison.Ordinal);
            if (at > 0 && scheme > 0 && at > scheme) url = url.Substring(0, scheme + 3) + "***" + url.Substring(at);
            return string.Format("{0} prefix '{1}' ({2} on store errors)", url, KeyPrefix, Vocabulary.Name(OnStoreError));
        }

        // What a setter cannot check alone: the required prefix.
        internal void Validate()
        {
            if (string.IsNullOrEmpty(KeyPrefix)) throw new ArgumentException("RedisOptions.KeyPrefix is required", "redis");
            if (ReplaceLimits && AdoptStoredLimits)
                throw new ArgumentException(
                    "RedisOptions.ReplaceLimits and AdoptStoredLimits exclude each other: set one (whose limits win) or neither",
                    "redis");
        }

        // Creates the native limiter (read-only: xg_limiter_inspect_redis); the strings are pinned only for the call
        // (the library copies them).
        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        internal static LimiterHandle Open(XgLimits limits, RedisOptions redis, uint clock, bool readOnly = false)
        {
            byte[] url = Native.Utf8(redis.Url);
            byte[] prefix = Native.Utf8(redis.KeyPrefix);
            byte[] ca = Native.Utf8(redis.TlsCaFile);
            GCHandle urlPin = GCHandle.Alloc(url, GCHandleType.Pinned);
            GCHandle prefixPin = GCHandle.Alloc(prefix, GCHandleType.Pinned);
            GCHandle caPin = ca == null ? default(GCHandle) : GCHandle.Alloc(ca, GCHandleType.Pinned);
            try
            {
                var options = new XgRedisOptions
                {
                    StructSize = Native.SizeOf<XgRedisOptions>(),
                    Url = urlPin.AddrOfPinnedObject(),
                    UrlLen = Native.Len(url),
                    KeyPrefix = prefixPin.AddrOfPinnedObject(),
                    KeyPrefixLen = Native.Len(prefix),
                    DeadlineMs = Native.DurationMs(redis.Deadline),
                    BreakerCooldownMs = Native.DurationMs(redis.BreakerCooldown),
                    OnStoreError = (uint)redis.OnStoreError,
                    Workers = (uint)redis.Workers,
                    ReplaceLimits = redis.ReplaceLimits ? NativeMethods.StoredLimitsReplace
                        : redis.AdoptStoredLimits ? NativeMethods.StoredLimitsAdopt : NativeMethods.StoredLimitsMustMatch,
                    TlsCaFile = ca == null ? IntPtr.Zero : caPin.AddrOfPinnedObject(),
                    TlsCaFileLen = Native.Len(ca),
                };
                LimiterHandle handle;
                Native.Ensure(readOnly
                    ? NativeMethods.xg_limiter_inspect_redis(ref options, clock, out handle)
                    : NativeMethods.xg_limiter_new_redis(ref limits, ref options, clock, out handle));
                return handle;
            }
            finally
            {
                if (caPin.IsAllocated) caPin.Free();
                prefixPin.Free();
                urlPin.Free();
            }
        }
    }
}
