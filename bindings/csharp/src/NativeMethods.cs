using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace XeroGuard
{
    // Mirrors of the C structs in include/xeroguard.h. Field order and types follow the header exactly;
    // Flags are uint8_t (byte) and size_t is UIntPtr, so Sequential layout gives the C offsets.

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgHeader
    {
        public IntPtr Name;
        public UIntPtr NameLen;
        public IntPtr Value;
        public UIntPtr ValueLen;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgResponse
    {
        public ushort Status;
        public IntPtr Headers;
        public UIntPtr HeaderCount;
        public IntPtr Body;
        public UIntPtr BodyLen;
        public long NowUnixMs;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgClassification
    {
        public uint StructSize;
        public ushort Status;
        public uint Category;
        public uint Action;
        public byte Retryable;
        public uint RateLimitProblem;
        public uint AuthProblem;
        public long RetryAfterMs;
        public long RecommendedWaitMs;
        public long MinuteRemaining;
        public long DayRemaining;
        public long AppMinuteRemaining;
        public byte HasErrorNumber;
        public long ErrorNumber;
        public uint ValidationMessageCount;
        public uint WarningCount;
        public uint FailedElementCount;
        // A byte in C too (ABI 2, in former padding): 1 when the server may have carried the request out.
        public byte MayHaveBeenProcessed;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgRetryPolicy
    {
        public uint StructSize;
        public uint MaxRetries;
        public ulong BaseMs;
        public ulong MaxBackoffMs;
        public ulong JitterMs;
        public ulong MaxWaitMs;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgBackoffDecision
    {
        public uint StructSize;
        public byte Retry;
        public ulong WaitMs;
        public uint GiveUp;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgRequest
    {
        public uint StructSize;
        public IntPtr Method;
        public UIntPtr MethodLen;
        public byte HasIdempotencyKey;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgWindowLimit
    {
        public uint Limit;
        public ulong WindowMs;
        public ulong MarginMs;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgLimits
    {
        public uint StructSize;
        public XgWindowLimit TenantMinute;
        public XgWindowLimit TenantDay;
        public uint TenantConcurrency;
        public XgWindowLimit AppMinute;
        public ulong PermitTimeoutMs;
        public uint MaxTenants;
    }

    // Returned by value from xg_redis_options_default, so it must be blittable.
    [StructLayout(LayoutKind.Sequential)]
    internal struct XgRedisOptions
    {
        public uint StructSize;
        public IntPtr Url;
        public UIntPtr UrlLen;
        public IntPtr KeyPrefix;
        public UIntPtr KeyPrefixLen;
        public ulong DeadlineMs;
        public ulong BreakerCooldownMs;
        public uint OnStoreError;
        public uint Workers;
        public byte ReplaceLimits;
        public IntPtr TlsCaFile;
        public UIntPtr TlsCaFileLen;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgDecision
    {
        public uint StructSize;
        public byte Granted;
        public ulong Permit;
        public ulong WaitMs;
        public uint Reason;
        public uint Fallback;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgWaitStep
    {
        public uint StructSize;
        public uint Outcome;
        public ulong Permit;
        public ulong WaitMs;
        public uint Reason;
        public ulong SleepMs;
        public uint Fallback;
        // In and out: the wait in progress, kept here by the library from step to step (one struct per wait).
        public byte Waiting;
        public ulong WaitStartedMs;
        public ulong WaitedMs;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgStats
    {
        // The lengths of the arrays (XG_STATS_*): fixed forever, a later vocabulary code is counted in an appended field.
        internal const int ReasonSlots = 9, FailurePolicySlots = 4, WaitBucketSlots = 7, CategorySlots = 17,
            RateLimitProblemSlots = 6, StoreFailureKindSlots = 5;

        public uint StructSize;
        public byte Shared;
        public byte BreakerOpen;
        public ulong Granted;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = ReasonSlots)] public ulong[] Refused;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = FailurePolicySlots)] public ulong[] Fallbacks;
        public ulong WaitsStarted;
        public ulong WaitsGranted;
        public ulong WaitsGivenUp;
        public ulong WaitsInterrupted;
        public ulong WaitMsTotal;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = WaitBucketSlots)] public ulong[] WaitBucketLeMs;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = WaitBucketSlots)] public ulong[] WaitBuckets;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = CategorySlots)] public ulong[] Responses;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = RateLimitProblemSlots)] public ulong[] RateLimited;
        public ulong StoreOperations;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = StoreFailureKindSlots)] public ulong[] StoreFailures;
        public ulong BreakerOpenings;
        public ulong ReplaysPending;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgReservation
    {
        public uint StructSize;
        public ulong Id;
        public ulong AtMs;
        public ulong WaitMs;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XgTenantLimits
    {
        public uint StructSize;
        public uint MinuteLimit;
        public uint DayLimit;
        public uint Concurrency;
    }

    // Owns an xg_limiter*. The P/Invoke marshaller AddRefs a SafeHandle around every call, so
    // ReleaseHandle (xg_limiter_free) never races with a call in flight, as the header requires.
    internal sealed class LimiterHandle : SafeHandle
    {
        public LimiterHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        protected override bool ReleaseHandle()
        {
            NativeMethods.xg_limiter_free(handle);
            return true;
        }
    }

    // One declaration per function of xeroguard.h, in header order.
    internal static class NativeMethods
    {
        private const string Lib = NativeLoader.DllImportName;

        internal const int StatusOk = 0;
        internal const int StatusBufferTooSmall = 5;
        internal const uint ClockMonotonic = 0;
        internal const uint ClockManual = 1;
        // xg_redis_options.ReplaceLimits: which limits win when the prefix holds others (XG_STORED_LIMITS_*).
        internal const byte StoredLimitsMustMatch = 0;
        internal const byte StoredLimitsReplace = 1;
        internal const byte StoredLimitsAdopt = 2;
        internal const long Unknown = -1;
        internal const ulong NoDeadline = ulong.MaxValue;
        internal const uint WaitGranted = 1;
        internal const uint WaitAskAgain = 2;
        internal const uint WaitGiveUp = 3;

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_last_error_message(byte[] buf, UIntPtr bufLen, out UIntPtr needed);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_refusal_words(uint reason, ulong waitMs, uint inFlight, byte[] buf, UIntPtr bufLen,
            out UIntPtr needed);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_duration_words(ulong ms, byte[] buf, UIntPtr bufLen, out UIntPtr needed);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr xg_status_name(int status);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void xg_string_free(IntPtr str);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr xg_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint xg_abi_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint xg_abi_oldest_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_body_bytes_to_classify(ushort status, byte[] contentType, UIntPtr contentTypeLen,
            out ulong output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_classify_flat(ushort status, byte[] headers, UIntPtr headersLen, byte[] body,
            UIntPtr bodyLen, long nowUnixMs, ref XgClassification output, out IntPtr jsonOut);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_classify_raw(byte[] raw, UIntPtr rawLen, long nowUnixMs,
            ref XgClassification output, out IntPtr jsonOut);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern XgRetryPolicy xg_retry_policy_default();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_backoff(ref XgClassification classification, uint attempt,
            ref XgRetryPolicy policy, ref XgBackoffDecision output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_resend(ref XgRequest request, ref XgClassification response, uint transportFailure,
            uint attempt, ref XgRetryPolicy policy, ref XgBackoffDecision output);

        // The same entry point for an attempt that got no response (response NULL, a transport failure code).
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, EntryPoint = "xg_resend")]
        internal static extern int xg_resend_without_response(ref XgRequest request, IntPtr nullResponse,
            uint transportFailure, uint attempt, ref XgRetryPolicy policy, ref XgBackoffDecision output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_method_is_write(byte[] method, UIntPtr methodLen, out byte output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr xg_category_name(uint code);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr xg_action_name(uint code);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr xg_rate_limit_problem_name(uint code);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr xg_auth_problem_name(uint code);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr xg_give_up_name(uint code);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr xg_failure_policy_name(uint code);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr xg_reason_name(uint code);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern XgLimits xg_limits_default();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern XgLimits xg_limits_exact();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_new(ref XgLimits limits, uint clock, out LimiterHandle output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern XgRedisOptions xg_redis_options_default();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_new_redis(ref XgLimits limits, ref XgRedisOptions options, uint clock,
            out LimiterHandle output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_inspect_redis(ref XgRedisOptions options, uint clock, out LimiterHandle output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void xg_limiter_free(IntPtr limiter);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_now_ms(LimiterHandle limiter, out ulong outMs);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_limits(LimiterHandle limiter, ref XgLimits outLimits);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_advance_ms(LimiterHandle limiter, ulong ms);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_set_now_ms(LimiterHandle limiter, ulong nowMs);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_acquire(LimiterHandle limiter, byte[] tenant, UIntPtr tenantLen,
            ref XgDecision output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_acquire_wait(LimiterHandle limiter, byte[] tenant, UIntPtr tenantLen,
            ulong timeoutMs, ref XgDecision output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_deadline_ms(LimiterHandle limiter, ulong timeoutMs, out ulong deadlineMs);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_acquire_until(LimiterHandle limiter, byte[] tenant, UIntPtr tenantLen,
            ulong deadlineMs, ulong maxBlockMs, ref XgWaitStep output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_interrupt(LimiterHandle limiter);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_peek(LimiterHandle limiter, byte[] tenant, UIntPtr tenantLen,
            ref XgDecision output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_record(LimiterHandle limiter, byte[] tenant, UIntPtr tenantLen);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_release(LimiterHandle limiter, ulong permit);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_reserve(LimiterHandle limiter, byte[] tenant, UIntPtr tenantLen,
            ref XgReservation output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_cancel(LimiterHandle limiter, ulong reservation);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_observe(LimiterHandle limiter, byte[] tenant, UIntPtr tenantLen,
            ref XgClassification classification);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_observe_raw(LimiterHandle limiter, byte[] tenant, UIntPtr tenantLen,
            byte[] raw, UIntPtr rawLen);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_snapshot_json(LimiterHandle limiter, byte[] tenant, UIntPtr tenantLen,
            out IntPtr jsonOut);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_set_tenant_limits(LimiterHandle limiter, byte[] tenant, UIntPtr tenantLen,
            ref XgTenantLimits limits);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int xg_limiter_stats(LimiterHandle limiter, ref XgStats output);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr xg_store_failure_kind_name(uint code);

        // The same entry point with NULL limits (clears a tenant's own limits).
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, EntryPoint = "xg_limiter_set_tenant_limits")]
        internal static extern int xg_limiter_clear_tenant_limits(LimiterHandle limiter, byte[] tenant, UIntPtr tenantLen,
            IntPtr nullLimits);
    }
}
