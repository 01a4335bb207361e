using System;
using System.Net.Http;

namespace XeroGuard
{
    /// <summary>What every <see cref="XeroGuardHandler"/> event says about the call: the request, its tenant and the attempt.</summary>
    public abstract class XeroGuardEventArgs : EventArgs
    {
        internal XeroGuardEventArgs(HttpRequestMessage request, string tenantId, int attempt)
        {
            Method = request.Method;
            RequestUri = request.RequestUri;
            TenantId = tenantId;
            Attempt = attempt;
        }

        /// <summary>The request's method.</summary>
        public HttpMethod Method { get; private set; }
        /// <summary>The request's URI.</summary>
        public Uri RequestUri { get; private set; }
        /// <summary>The request's <c>Xero-Tenant-Id</c> (null for a tenantless call).</summary>
        public string TenantId { get; private set; }
        /// <summary>The attempt concerned: 1 for the first send.</summary>
        public int Attempt { get; private set; }
    }

    /// <summary><see cref="XeroGuardHandler.Waiting"/>: the limiter refused an attempt for now, and the handler waits for a permit.</summary>
    public sealed class PacingEventArgs : XeroGuardEventArgs
    {
        internal PacingEventArgs(HttpRequestMessage request, string tenantId, int attempt, Decision refusal)
            : base(request, tenantId, attempt)
        {
            Wait = refusal.Wait;
            Reason = refusal.Reason;
            Fallback = refusal.Fallback;
        }

        /// <summary>How long the limiter says the call must wait (it may be granted sooner, when a permit comes back).</summary>
        public TimeSpan Wait { get; private set; }
        /// <summary>Why (the minute window, a Retry-After, …).</summary>
        public Reason? Reason { get; private set; }
        /// <summary>The failure policy that refused because the shared store was out of reach; null when the limiter's state did.</summary>
        public FailurePolicy? Fallback { get; private set; }
    }

    /// <summary>
    /// <see cref="XeroGuardHandler.Retrying"/> and <see cref="XeroGuardHandler.GivingUp"/>: an attempt's outcome (a
    /// response, or the exception of a failed send) and what the library decided about sending it again.
    /// </summary>
    public sealed class ResendEventArgs : XeroGuardEventArgs
    {
        internal ResendEventArgs(HttpRequestMessage request, string tenantId, int attempt, TimeSpan wait, GiveUpReason giveUp,
            Classification classification, Exception exception)
            : base(request, tenantId, attempt)
        {
            Wait = wait;
            GiveUp = giveUp;
            Classification = classification;
            Exception = exception;
        }

        /// <summary>Retrying: the wait before the next send. Giving up for <see cref="GiveUpReason.WaitTooLong"/>: the wait that was too long. Otherwise zero.</summary>
        public TimeSpan Wait { get; private set; }
        /// <summary>Why the handler gives up (<see cref="GiveUpReason.None"/> when retrying).</summary>
        public GiveUpReason GiveUp { get; private set; }
        /// <summary>The classification of the attempt's response; null when there was none.</summary>
        public Classification Classification { get; private set; }
        /// <summary>
        /// The exception of a send that got no response (which a give-up rethrows to the caller unchanged), or the
        /// <see cref="RateLimitWaitTooLongException"/> of a pacing wait given up; null when a response came.
        /// </summary>
        public Exception Exception { get; private set; }
    }

    /// <summary>
    /// <see cref="XeroGuardHandler.StoreError"/>: the limiter could not be told about a response that exists (a shared
    /// store out of reach, for example). The response still reaches the caller: once it exists nothing is thrown, so a
    /// write the server carried out is never reported as failed (and resent by code that retries on exceptions).
    /// </summary>
    public sealed class StoreErrorEventArgs : XeroGuardEventArgs
    {
        internal StoreErrorEventArgs(HttpRequestMessage request, string tenantId, int attempt, string operation,
            Exception exception)
            : base(request, tenantId, attempt)
        {
            Operation = operation;
            Exception = exception;
        }

        /// <summary>What failed: <c>"observe"</c> (feeding the response back) or <c>"release"</c> (the concurrency slot).</summary>
        public string Operation { get; private set; }
        /// <summary>What the library threw (a <see cref="StoreUnavailableException"/>, …).</summary>
        public Exception Exception { get; private set; }
    }
}
