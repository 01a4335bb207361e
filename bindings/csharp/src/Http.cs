using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;

namespace XeroGuard
{
    /// <summary>Classification of <see cref="HttpResponseMessage"/>s.</summary>
    public static class HttpResponseMessageExtensions
    {
        /// <summary>The key under which <see cref="XeroGuardHandler"/> stores the final classification in the request's Properties.</summary>
        public const string ClassificationProperty = "XeroGuard.Classification";
        /// <summary>The key of the number of attempts <see cref="XeroGuardHandler"/> made (an int).</summary>
        public const string AttemptsProperty = "XeroGuard.Attempts";

        /// <summary>Classifies a response: status, response and content headers, and the body (buffered, so it can still be read).</summary>
        public static async Task<Classification> ClassifyAsync(this HttpResponseMessage response)
        {
            if (response == null) throw new ArgumentNullException("response");
            byte[] body = response.Content == null ? new byte[0] : await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
            return Classifier.Classify((int)response.StatusCode, Headers(response), body);
        }

        /// <summary>Synchronous <see cref="ClassifyAsync"/>; HttpClient responses are already buffered unless ResponseHeadersRead was asked for.</summary>
        public static Classification Classify(this HttpResponseMessage response)
        {
            return response.ClassifyAsync().ConfigureAwait(false).GetAwaiter().GetResult();
        }

        /// <summary>The classification <see cref="XeroGuardHandler"/> made of this response, or null when it did not handle it.</summary>
        public static Classification GetXeroGuardClassification(this HttpResponseMessage response)
        {
            if (response == null) throw new ArgumentNullException("response");
            object value;
            if (response.RequestMessage != null && response.RequestMessage.Properties.TryGetValue(ClassificationProperty, out value))
                return value as Classification;
            return null;
        }

        // One (name, value) pair per value; the library matches names case-insensitively.
        private static IEnumerable<KeyValuePair<string, string>> Headers(HttpResponseMessage response)
        {
            var all = response.Headers.AsEnumerable();
            if (response.Content != null) all = all.Concat(response.Content.Headers);
            foreach (var h in all)
                foreach (var v in h.Value)
                    yield return new KeyValuePair<string, string>(h.Key, v);
        }
    }

    /// <summary>
    /// An HttpClient handler that paces Xero calls through a <see cref="Limiter"/> and retries what the library
    /// says is retryable. The tenant is the request's <c>Xero-Tenant-Id</c> header (none: a tenantless call).
    /// The final <see cref="Classification"/> is on the response: <c>response.GetXeroGuardClassification()</c>.
    /// </summary>
    public sealed class XeroGuardHandler : DelegatingHandler
    {
        public const string TenantHeader = "Xero-Tenant-Id";

        private readonly Limiter limiter;
        private readonly RetryPolicy policy;

        /// <summary>Wraps <paramref name="innerHandler"/> (null: a new HttpClientHandler).</summary>
        public XeroGuardHandler(Limiter limiter, RetryPolicy policy = null, HttpMessageHandler innerHandler = null)
            : base(innerHandler ?? new HttpClientHandler())
        {
            if (limiter == null) throw new ArgumentNullException("limiter");
            this.limiter = limiter;
            this.policy = policy ?? new RetryPolicy();
        }

        public Limiter Limiter { get { return limiter; } }
        public RetryPolicy Policy { get { return policy; } }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            IEnumerable<string> values;
            string tenant = request.Headers.TryGetValues(TenantHeader, out values) ? values.FirstOrDefault() : null;
            // The policy's cap applies to pacing waits too, so a day limit is never slept through.
            TimeSpan maxWait = TimeSpan.FromMilliseconds(policy.MaxWaitMs);
            if (request.Content != null) await request.Content.LoadIntoBufferAsync().ConfigureAwait(false); // resendable

            for (int attempt = 1; ; attempt++)
            {
                HttpResponseMessage response;
                Classification classification;
                using (Permit permit = await limiter.AcquireAsync(tenant, maxWait, cancellationToken).ConfigureAwait(false))
                {
                    response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
                    try
                    {
                        classification = await response.ClassifyAsync().ConfigureAwait(false);
                        limiter.Observe(tenant, classification);
                    }
                    catch
                    {
                        response.Dispose();
                        throw;
                    }
                }

                request.Properties[HttpResponseMessageExtensions.ClassificationProperty] = classification;
                request.Properties[HttpResponseMessageExtensions.AttemptsProperty] = attempt;
                if (response.RequestMessage == null) response.RequestMessage = request;
                if (!classification.Retryable) return response;

                BackoffDecision next = Backoff.Decide(classification, attempt, policy);
                if (!next.Retry) return response;
                response.Dispose();
                await Task.Delay(next.Wait, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
