using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;

namespace XeroGuard
{
    /// <summary>Classification of <see cref="HttpResponseMessage"/>s, and what <see cref="XeroGuardHandler"/> left on them.</summary>
    public static class HttpResponseMessageExtensions
    {
        /// <summary>
        /// The key under which <see cref="XeroGuardHandler"/> stores the final classification on the request
        /// (in <c>Options</c> on .NET 5+, in <c>Properties</c> on netstandard2.0). Read it with
        /// <see cref="GetXeroGuardClassification"/>.
        /// </summary>
        public const string ClassificationProperty = "XeroGuard.Classification";

        /// <summary>The key of the number of attempts <see cref="XeroGuardHandler"/> made (an int); read it with <see cref="GetXeroGuardAttempts"/>.</summary>
        public const string AttemptsProperty = "XeroGuard.Attempts";

#if NET5_0_OR_GREATER
        /// <summary>The <see cref="HttpRequestMessage.Options"/> key of the final classification.</summary>
        public static readonly HttpRequestOptionsKey<Classification> ClassificationOption =
            new HttpRequestOptionsKey<Classification>(ClassificationProperty);

        /// <summary>The <see cref="HttpRequestMessage.Options"/> key of the number of attempts.</summary>
        public static readonly HttpRequestOptionsKey<int> AttemptsOption =
            new HttpRequestOptionsKey<int>(AttemptsProperty);
#endif

        /// <summary>
        /// Classifies a response from its status and its response and content headers, and from as much of its body
        /// as the library's rule asks for, as <see cref="XeroGuardHandler"/> does (xg_body_bytes_to_classify: every
        /// error body; a JSON, XML or text success up to 1 MiB; nothing of any other success, a download). The body
        /// stays readable: what was read is kept, and the rest of a longer body follows it unread.
        /// </summary>
        public static Task<Classification> ClassifyAsync(this HttpResponseMessage response,
            CancellationToken cancellationToken = default(CancellationToken))
        {
            if (response == null) throw new ArgumentNullException(nameof(response));
            return ResponseBody.ClassifyAsync(response, cancellationToken);
        }

        /// <summary>Synchronous <see cref="ClassifyAsync"/>; it blocks while the body is read.</summary>
        public static Classification Classify(this HttpResponseMessage response)
        {
            return response.ClassifyAsync().ConfigureAwait(false).GetAwaiter().GetResult();
        }

        /// <summary>The classification <see cref="XeroGuardHandler"/> made of this response, or null when it did not handle it.</summary>
        public static Classification GetXeroGuardClassification(this HttpResponseMessage response)
        {
            if (response == null) throw new ArgumentNullException(nameof(response));
            return response.RequestMessage == null ? null : RequestState.Classification(response.RequestMessage);
        }

        /// <summary>How many times <see cref="XeroGuardHandler"/> sent the request (1 when not retried), or null when it did not handle it.</summary>
        public static int? GetXeroGuardAttempts(this HttpResponseMessage response)
        {
            if (response == null) throw new ArgumentNullException(nameof(response));
            return response.RequestMessage == null ? null : RequestState.Attempts(response.RequestMessage);
        }
    }

    /// <summary>
    /// An HttpClient handler that paces Xero calls through a <see cref="Limiter"/> and sends again what the library
    /// says may be sent again (<see cref="Resend"/>), never duplicating a write: every POST, PUT or PATCH without an
    /// <c>Idempotency-Key</c> gets one, the same on every resend (<see cref="AutoIdempotencyKeys"/>). The tenant is the
    /// request's <c>Xero-Tenant-Id</c> header (none: a tenantless call). The final <see cref="Classification"/> is on the
    /// response: <c>response.GetXeroGuardClassification()</c>. Its events (<see cref="Waiting"/>,
    /// <see cref="Retrying"/>, <see cref="GivingUp"/>) are for logging and counting.
    /// </summary>
    public sealed class XeroGuardHandler : DelegatingHandler
    {
        /// <summary>The request header naming the tenant (organisation) a call is for.</summary>
        public const string TenantHeader = "Xero-Tenant-Id";

        private readonly Limiter limiter;
        private readonly RetryPolicy policy;
        private readonly object innerHandlerGate = new object();
        private volatile bool autoIdempotencyKeys = true;

        /// <summary>
        /// A handler whose <see cref="DelegatingHandler.InnerHandler"/> is left null, as
        /// <c>IHttpClientFactory</c> (<c>AddHttpMessageHandler</c>) and hand-built chains expect: they set it.
        /// Given straight to <c>new HttpClient(handler)</c>, it sends through a new <see cref="HttpClientHandler"/>
        /// made at the first request.
        /// </summary>
        /// <param name="limiter">Paces the calls; share one per app (it is the app's view of Xero's limits).</param>
        /// <param name="policy">Retries and the longest wait (null: the library's defaults).</param>
        public XeroGuardHandler(Limiter limiter, RetryPolicy policy = null)
        {
            if (limiter == null) throw new ArgumentNullException(nameof(limiter));
            this.limiter = limiter;
            this.policy = policy ?? new RetryPolicy();
        }

        /// <summary>A handler that sends through <paramref name="innerHandler"/>.</summary>
        /// <param name="limiter">Paces the calls; share one per app.</param>
        /// <param name="policy">Retries and the longest wait (null: the library's defaults).</param>
        /// <param name="innerHandler">The handler that sends the requests.</param>
        public XeroGuardHandler(Limiter limiter, RetryPolicy policy, HttpMessageHandler innerHandler)
            : base(innerHandler ?? throw new ArgumentNullException(nameof(innerHandler)))
        {
            if (limiter == null) throw new ArgumentNullException(nameof(limiter));
            this.limiter = limiter;
            this.policy = policy ?? new RetryPolicy();
        }

        /// <summary>The limiter that paces the calls.</summary>
        public Limiter Limiter { get { return limiter; } }

        /// <summary>The retry policy; its <see cref="RetryPolicy.MaxWaitMs"/> is also the timeout of the wait for a permit.</summary>
        public RetryPolicy Policy { get { return policy; } }

        /// <summary>
        /// True (the default): a request the library counts as a write (POST, PUT, PATCH) that has no
        /// <c>Idempotency-Key</c> header gets one, a new GUID, kept on every resend of that call, so Xero carries it out
        /// once; a caller's own key is always kept. False: no key is added, and a write without one that the server may
        /// have carried out (a 500, a timeout or reset after sending) is not resent: the caller gets the response, or the
        /// exception, as it came.
        /// </summary>
        public bool AutoIdempotencyKeys
        {
            get { return autoIdempotencyKeys; }
            set { autoIdempotencyKeys = value; }
        }

        /// <summary>
        /// Raised when the limiter refuses an attempt for now and the handler waits for a permit (once per attempt),
        /// with the wait the limiter asked for and why. Handlers of these events run on the request's path: keep them quick.
        /// </summary>
        public event EventHandler<PacingEventArgs> Waiting;

        /// <summary>Raised before a resend, with the attempt's outcome (a classification, or an exception) and the wait before the next send.</summary>
        public event EventHandler<ResendEventArgs> Retrying;

        /// <summary>
        /// Raised when the handler stops although the outcome was a failure that resending might have cured: retries used up
        /// (<see cref="GiveUpReason.AttemptsExhausted"/>), a wait too long (<see cref="GiveUpReason.WaitTooLong"/>, for a
        /// backoff or for a permit), or a write unsafe to resend (<see cref="GiveUpReason.UnsafeToResend"/>). Not raised
        /// for a final answer (a success, a validation error) nor for a cancelled call.
        /// </summary>
        public event EventHandler<ResendEventArgs> GivingUp;

        /// <summary>
        /// Raised when the limiter could not observe or release a response that exists (a shared store out of reach):
        /// the response is returned all the same, nothing is thrown, and the request is not sent again for it.
        /// </summary>
        public event EventHandler<StoreErrorEventArgs> StoreError;

        /// <summary>Paces, sends, classifies, observes and resends (see the class summary).</summary>
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request == null) throw new ArgumentNullException(nameof(request));
            if (InnerHandler == null) UseDefaultInnerHandler();
            IEnumerable<string> values;
            string tenant = request.Headers.TryGetValues(TenantHeader, out values) ? values.FirstOrDefault() : null;
            string method = request.Method.Method;
            bool hasKey = EnsureIdempotencyKey(request, method);
            if (request.Content != null) await request.Content.LoadIntoBufferAsync().ConfigureAwait(false); // resendable

            for (int attempt = 1; ; attempt++)
            {
                HttpResponseMessage response = null;
                Classification classification = null;
                ExceptionDispatchInfo failure = null;
                TransportFailure failureKind = TransportFailure.NoResponse;
                var trouble = new List<StoreErrorEventArgs>();
                Permit permit = await AcquireAsync(request, tenant, attempt, cancellationToken).ConfigureAwait(false);
                try
                {
                    try
                    {
                        response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        // A cancellation by the caller's token (or HttpClient's timeout) is never retried.
                        TransportFailure? kind = e is OperationCanceledException && cancellationToken.IsCancellationRequested
                            ? null : TransportFailures.Of(e);
                        if (!kind.HasValue) throw;
                        failure = ExceptionDispatchInfo.Capture(e);
                        failureKind = kind.Value;
                    }
                    if (response != null)
                    {
                        try
                        {
                            classification = await ResponseBody.ClassifyAsync(response, cancellationToken).ConfigureAwait(false);
                        }
                        catch
                        {
                            response.Dispose();
                            throw;
                        }
                        // Before the permit goes back, so the next waiter sees the server's view; best-effort.
                        try
                        {
                            limiter.Observe(tenant ?? Limiter.Tenantless, classification);
                        }
                        catch (XeroGuardException e)
                        {
                            trouble.Add(new StoreErrorEventArgs(request, tenant, attempt, "observe", e));
                        }
                    }
                }
                finally
                {
                    Exception released = limiter.ReleaseReporting(permit);
                    if (released != null) trouble.Add(new StoreErrorEventArgs(request, tenant, attempt, "release", released));
                }
                foreach (StoreErrorEventArgs problem in trouble) Raise(StoreError, problem);

                if (response != null)
                {
                    RequestState.Store(request, classification, attempt);
                    if (response.RequestMessage == null) response.RequestMessage = request;
                }
                BackoffDecision next = response != null
                    ? Resend.Decide(method, hasKey, classification, attempt, policy)
                    : Resend.Decide(method, hasKey, failureKind, attempt, policy);
                var outcome = new ResendEventArgs(request, tenant, attempt, next.Wait, next.GiveUp, classification,
                    failure == null ? null : failure.SourceException);
                if (!next.Retry)
                {
                    if (next.GiveUp != GiveUpReason.NotRetryable) Raise(GivingUp, outcome);
                    if (failure != null) failure.Throw(); // the caller's exception, with its stack
                    return response;
                }
                Raise(Retrying, outcome);
                if (response != null) response.Dispose();
                await Task.Delay(Native.DelayFor((ulong)next.WaitMs), cancellationToken).ConfigureAwait(false);
            }
        }

        // The caller's key is kept; otherwise a write gets a new one (the library says which methods are writes).
        private bool EnsureIdempotencyKey(HttpRequestMessage request, string method)
        {
            if (request.Headers.Contains(Resend.IdempotencyKeyHeader)) return true;
            if (!AutoIdempotencyKeys || !Resend.NeedsIdempotencyKey(method)) return false;
            request.Headers.TryAddWithoutValidation(Resend.IdempotencyKeyHeader, Guid.NewGuid().ToString("D"));
            return true;
        }

        // The policy's longest wait is the permit wait's timeout too, so a day limit is never slept through.
        private async Task<Permit> AcquireAsync(HttpRequestMessage request, string tenant, int attempt, CancellationToken cancellationToken)
        {
            try
            {
                return await limiter.AcquireAsync(tenant ?? Limiter.Tenantless, Native.CheckedMs(policy.MaxWaitMs, "MaxWaitMs"), cancellationToken,
                    refusal => Raise(Waiting, new PacingEventArgs(request, tenant, attempt, refusal))).ConfigureAwait(false);
            }
            catch (RateLimitWaitTooLongException e)
            {
                Raise(GivingUp, new ResendEventArgs(request, tenant, attempt, e.Wait, GiveUpReason.WaitTooLong, null, e));
                throw;
            }
        }

        private void Raise<T>(EventHandler<T> handlers, T args) where T : EventArgs
        {
            if (handlers != null) handlers(this, args);
        }

        // Only before the first request: DelegatingHandler refuses a new inner handler once one has been sent.
        private void UseDefaultInnerHandler()
        {
            lock (innerHandlerGate)
            {
                if (InnerHandler == null) InnerHandler = new HttpClientHandler();
            }
        }
    }

    // Where the handler leaves its result on the request: Options on .NET 5+ (Properties is obsolete there),
    // Properties on netstandard2.0.
    internal static class RequestState
    {
        internal static void Store(HttpRequestMessage request, Classification classification, int attempts)
        {
#if NET5_0_OR_GREATER
            request.Options.Set(HttpResponseMessageExtensions.ClassificationOption, classification);
            request.Options.Set(HttpResponseMessageExtensions.AttemptsOption, attempts);
#else
            request.Properties[HttpResponseMessageExtensions.ClassificationProperty] = classification;
            request.Properties[HttpResponseMessageExtensions.AttemptsProperty] = attempts;
#endif
        }

        internal static Classification Classification(HttpRequestMessage request)
        {
#if NET5_0_OR_GREATER
            Classification value;
            bool found = request.Options.TryGetValue(HttpResponseMessageExtensions.ClassificationOption, out value);
            return found ? value : null;
#else
            object value;
            bool found = request.Properties.TryGetValue(HttpResponseMessageExtensions.ClassificationProperty, out value);
            return found ? value as Classification : null;
#endif
        }

        internal static int? Attempts(HttpRequestMessage request)
        {
#if NET5_0_OR_GREATER
            int value;
            bool found = request.Options.TryGetValue(HttpResponseMessageExtensions.AttemptsOption, out value);
            return found ? value : (int?)null;
#else
            object value;
            bool found = request.Properties.TryGetValue(HttpResponseMessageExtensions.AttemptsProperty, out value);
            return found ? value as int? : null;
#endif
        }
    }
}
