using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace XeroGuard
{
    /// <summary>A retry policy mirroring xg_retry_policy; a new instance holds the library's defaults.</summary>
    public sealed class RetryPolicy
    {
        /// <summary>A policy holding the library's defaults (xg_retry_policy_default): 5 retries, 500 ms doubling to 30 s, 250 ms jitter, 5 minutes at most.</summary>
        public RetryPolicy()
        {
            Native.EnsureAbi();
            XgRetryPolicy d = NativeMethods.xg_retry_policy_default();
            MaxRetries = (int)d.MaxRetries;
            BaseMs = Native.ClampToLong(d.BaseMs);
            MaxBackoffMs = Native.ClampToLong(d.MaxBackoffMs);
            JitterMs = Native.ClampToLong(d.JitterMs);
            MaxWaitMs = Native.ClampToLong(d.MaxWaitMs);
        }

        /// <summary>Retries allowed after the first attempt.</summary>
        public int MaxRetries { get; set; }
        /// <summary>The first backoff; it doubles with each retry up to <see cref="MaxBackoffMs"/>.</summary>
        public long BaseMs { get; set; }
        /// <summary>The longest backoff before jitter; the server's wait (Retry-After) can still be longer.</summary>
        public long MaxBackoffMs { get; set; }
        /// <summary>Up to this much random time is added to each wait.</summary>
        public long JitterMs { get; set; }
        /// <summary>A needed wait longer than this (a day limit, say) is not slept through: give up instead.</summary>
        public long MaxWaitMs { get; set; }

        internal XgRetryPolicy ToNative()
        {
            if (MaxRetries < 0) throw new ArgumentOutOfRangeException("MaxRetries", MaxRetries, "must not be negative");
            return new XgRetryPolicy
            {
                StructSize = Native.SizeOf<XgRetryPolicy>(),
                MaxRetries = (uint)MaxRetries,
                BaseMs = Native.CheckedMs(BaseMs, "BaseMs"),
                MaxBackoffMs = Native.CheckedMs(MaxBackoffMs, "MaxBackoffMs"),
                JitterMs = Native.CheckedMs(JitterMs, "JitterMs"),
                MaxWaitMs = Native.CheckedMs(MaxWaitMs, "MaxWaitMs"),
            };
        }
    }

    /// <summary>The outcome of <see cref="Backoff.Decide"/>: retry after <see cref="WaitMs"/>, or give up.</summary>
    public sealed class BackoffDecision
    {
        internal BackoffDecision(bool retry, long waitMs, GiveUpReason giveUp)
        {
            Retry = retry;
            WaitMs = waitMs;
            GiveUp = giveUp;
        }

        /// <summary>True: retry after <see cref="WaitMs"/>. False: give up, for <see cref="GiveUp"/>.</summary>
        public bool Retry { get; private set; }
        /// <summary>The wait before retrying; when giving up for <see cref="GiveUpReason.WaitTooLong"/>, the wait that was too long.</summary>
        public long WaitMs { get; private set; }
        /// <summary>Why it gave up (<see cref="GiveUpReason.None"/> when retrying).</summary>
        public GiveUpReason GiveUp { get; private set; }
        /// <summary><see cref="WaitMs"/> as a TimeSpan.</summary>
        public TimeSpan Wait { get { return TimeSpan.FromMilliseconds(WaitMs); } }
    }

    /// <summary>The retry policy's decision (xg_backoff): capped exponential backoff with jitter, never below the server's wait.</summary>
    public static class Backoff
    {
        /// <summary>Whether retry number <paramref name="attempt"/> (1 = the first retry) should happen, and after how long.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        public static BackoffDecision Decide(Classification classification, int attempt, RetryPolicy policy = null)
        {
            if (classification == null) throw new ArgumentNullException("classification");
            if (attempt < 0) throw new ArgumentOutOfRangeException("attempt", attempt, "must not be negative");
            XgRetryPolicy p = (policy ?? new RetryPolicy()).ToNative();
            XgClassification c = classification.Native;
            var output = new XgBackoffDecision { StructSize = Native.SizeOf<XgBackoffDecision>() };
            Native.Ensure(NativeMethods.xg_backoff(ref c, (uint)attempt, ref p, ref output));
            return new BackoffDecision(output.Retry == 1, Native.ClampToLong(output.WaitMs), (GiveUpReason)output.GiveUp);
        }
    }
}

namespace XeroGuard
{
    /// <summary>
    /// Whether a request may be sent again after an attempt's outcome, and after how long (xg_resend,
    /// xero-reference §8): what the server did not act on is resent; what it may have carried out is resent for GET,
    /// HEAD, OPTIONS and DELETE, or a write that carries an Idempotency-Key, and never for a write without one
    /// (<see cref="GiveUpReason.UnsafeToResend"/>). Then the backoff of <see cref="Backoff.Decide"/> applies.
    /// <see cref="XeroGuardHandler"/> asks this for every attempt.
    /// </summary>
    public static class Resend
    {
        /// <summary>The request header that makes a write safe to resend: Xero carries out one request per key.</summary>
        public const string IdempotencyKeyHeader = "Idempotency-Key";

        /// <summary>
        /// After attempt number <paramref name="attempt"/> (1 = the first send) of a request with this
        /// <paramref name="method"/> got the response <paramref name="response"/>: send it again, after how long, or give
        /// up and why.
        /// </summary>
        public static BackoffDecision Decide(string method, bool hasIdempotencyKey, Classification response, int attempt,
            RetryPolicy policy = null)
        {
            if (response == null) throw new ArgumentNullException(nameof(response));
            return Ask(method, hasIdempotencyKey, response, 0, attempt, policy);
        }

        /// <summary>As the overload with a response, for an attempt that got none (<paramref name="failure"/> says how it failed).</summary>
        public static BackoffDecision Decide(string method, bool hasIdempotencyKey, TransportFailure failure, int attempt,
            RetryPolicy policy = null)
        {
            if (failure != TransportFailure.NotSent && failure != TransportFailure.NoResponse)
                throw new ArgumentOutOfRangeException(nameof(failure), failure, "not a TransportFailure");
            return Ask(method, hasIdempotencyKey, null, (uint)failure, attempt, policy);
        }

        /// <summary>
        /// True for a method the library treats as a write (POST, PUT, PATCH, any method it does not know): one it
        /// would not resend after an ambiguous failure unless the request carries an Idempotency-Key. The library is
        /// asked (xg_method_is_write), so the list of methods lives in one place.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        public static bool NeedsIdempotencyKey(string method)
        {
            byte[] methodBytes = MethodBytes(method);
            Native.EnsureAbi();
            byte write;
            Native.Ensure(NativeMethods.xg_method_is_write(methodBytes, Native.Len(methodBytes), out write));
            return write == 1;
        }

        private static byte[] MethodBytes(string method)
        {
            if (string.IsNullOrEmpty(method)) throw new ArgumentException("an HTTP method is required", nameof(method));
            return Native.Utf8(method);
        }

        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        private static BackoffDecision Ask(string method, bool hasIdempotencyKey, Classification response,
            uint transportFailure, int attempt, RetryPolicy policy)
        {
            byte[] methodBytes = MethodBytes(method);
            if (attempt < 0) throw new ArgumentOutOfRangeException(nameof(attempt), attempt, "must not be negative");
            XgRetryPolicy p = (policy ?? new RetryPolicy()).ToNative();
            var output = new XgBackoffDecision { StructSize = Native.SizeOf<XgBackoffDecision>() };
            GCHandle pin = GCHandle.Alloc(methodBytes, GCHandleType.Pinned);
            try
            {
                var request = new XgRequest
                {
                    StructSize = Native.SizeOf<XgRequest>(),
                    Method = pin.AddrOfPinnedObject(),
                    MethodLen = Native.Len(methodBytes),
                    HasIdempotencyKey = (byte)(hasIdempotencyKey ? 1 : 0),
                };
                if (response != null)
                {
                    XgClassification c = response.Native;
                    Native.Ensure(NativeMethods.xg_resend(ref request, ref c, 0, (uint)attempt, ref p, ref output));
                }
                else
                {
                    Native.Ensure(NativeMethods.xg_resend_without_response(ref request, IntPtr.Zero, transportFailure,
                        (uint)attempt, ref p, ref output));
                }
            }
            finally
            {
                pin.Free();
            }
            return new BackoffDecision(output.Retry == 1, Native.ClampToLong(output.WaitMs), (GiveUpReason)output.GiveUp);
        }
    }
}
