using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Net.Http.Headers;
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
        /// Classifies a response from its status and its response and content headers, and from its body where the
        /// body can carry an error (the rule of <see cref="XeroGuardHandler"/>: an error status; a JSON or XML success
        /// up to <see cref="XeroGuardHandler.DefaultMaxSuccessBodyBytes"/>). The body stays readable: what was read is
        /// buffered, and a success too large to buffer is handed on unread.
        /// </summary>
        public static Task<Classification> ClassifyAsync(this HttpResponseMessage response,
            CancellationToken cancellationToken = default(CancellationToken))
        {
            if (response == null) throw new ArgumentNullException(nameof(response));
            return ResponseBody.ClassifyAsync(response, XeroGuardHandler.DefaultMaxSuccessBodyBytes, cancellationToken);
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
    /// An HttpClient handler that paces Xero calls through a <see cref="Limiter"/> and retries what the library
    /// says is retryable. The tenant is the request's <c>Xero-Tenant-Id</c> header (none: a tenantless call).
    /// The final <see cref="Classification"/> is on the response: <c>response.GetXeroGuardClassification()</c>.
    /// </summary>
    public sealed class XeroGuardHandler : DelegatingHandler
    {
        /// <summary>The request header naming the tenant (organisation) a call is for.</summary>
        public const string TenantHeader = "Xero-Tenant-Id";

        /// <summary>The default of <see cref="MaxSuccessBodyBytes"/>: 1 MiB.</summary>
        public const long DefaultMaxSuccessBodyBytes = 1024 * 1024;

        private readonly Limiter limiter;
        private readonly RetryPolicy policy;
        private readonly object innerHandlerGate = new object();
        private long maxSuccessBodyBytes = DefaultMaxSuccessBodyBytes;

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

        /// <summary>The retry policy; its <see cref="RetryPolicy.MaxWaitMs"/> also caps the wait for a permit.</summary>
        public RetryPolicy Policy { get { return policy; } }

        /// <summary>
        /// The largest 2xx JSON or XML body read to classify it (default 1 MiB). Such a body can carry errors
        /// (a summarizeErrors=false batch, an XPM <c>&lt;Status&gt;ERROR&lt;/Status&gt;</c>); a larger one, or a 2xx of
        /// any other type (a PDF, an attachment), is classified from its status and headers and left unread, so a
        /// download stays a stream. Error statuses are always read.
        /// </summary>
        public long MaxSuccessBodyBytes
        {
            get { return Volatile.Read(ref maxSuccessBodyBytes); }
            set
            {
                if (value < 0) throw new ArgumentOutOfRangeException(nameof(value), value, "must not be negative");
                Volatile.Write(ref maxSuccessBodyBytes, value);
            }
        }

        /// <summary>Paces, sends, classifies, observes and retries (see the class summary).</summary>
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request == null) throw new ArgumentNullException(nameof(request));
            if (InnerHandler == null) UseDefaultInnerHandler();
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
                        classification = await ResponseBody.ClassifyAsync(response, MaxSuccessBodyBytes, cancellationToken)
                            .ConfigureAwait(false);
                        limiter.Observe(tenant, classification);
                    }
                    catch
                    {
                        response.Dispose();
                        throw;
                    }
                }

                RequestState.Store(request, classification, attempt);
                if (response.RequestMessage == null) response.RequestMessage = request;
                if (!classification.Retryable) return response;

                BackoffDecision next = Backoff.Decide(classification, attempt, policy);
                if (!next.Retry) return response;
                response.Dispose();
                await Task.Delay(next.Wait, cancellationToken).ConfigureAwait(false);
            }
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

    // Which bodies are read to classify a response. An error status: always (error bodies are small, and the
    // classification needs them). A 2xx: only a JSON or XML body within the limit, since only those can carry an
    // error; a file or an over-large body stays a stream. The Python transports read only error statuses.
    internal static class ResponseBody
    {
        private const int ChunkBytes = 16 * 1024;
        private static readonly byte[] None = new byte[0];

        internal static async Task<Classification> ClassifyAsync(HttpResponseMessage response, long maxSuccessBodyBytes,
            CancellationToken cancellationToken)
        {
            byte[] body = await ReadAsync(response, maxSuccessBodyBytes, cancellationToken).ConfigureAwait(false);
            return Classifier.Classify((int)response.StatusCode, Headers(response), body);
        }

        private static async Task<byte[]> ReadAsync(HttpResponseMessage response, long maxSuccessBodyBytes,
            CancellationToken cancellationToken)
        {
            HttpContent content = response.Content;
            if (content == null) return None;
            int status = (int)response.StatusCode;
            bool success = status >= 200 && status < 300;
            if (success && !MayCarryError(content.Headers.ContentType)) return None;
            long? length = content.Headers.ContentLength;
            if (length == 0 || (success && length > maxSuccessBodyBytes)) return None;
            if (!success || length.HasValue)
            {
                await content.LoadIntoBufferAsync().ConfigureAwait(false); // the caller can still read it
                return await content.ReadAsByteArrayAsync().ConfigureAwait(false);
            }
            return await ReadUnknownLengthAsync(response, maxSuccessBodyBytes, cancellationToken).ConfigureAwait(false);
        }

        // A success of unknown length (chunked, or decompressed): read at most the limit plus one byte. If it ended,
        // the response gets the bytes as its content; otherwise the read part followed by the rest, unread.
        private static async Task<byte[]> ReadUnknownLengthAsync(HttpResponseMessage response, long maxSuccessBodyBytes,
            CancellationToken cancellationToken)
        {
            HttpContent original = response.Content;
            Stream stream = await original.ReadAsStreamAsync().ConfigureAwait(false);
            var prefix = new MemoryStream();
            var chunk = new byte[ChunkBytes];
            bool ended = false;
            while (prefix.Length <= maxSuccessBodyBytes)
            {
                int wanted = (int)Math.Min(chunk.Length, maxSuccessBodyBytes + 1 - prefix.Length);
                int n = await stream.ReadAsync(chunk, 0, wanted, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    ended = true;
                    break;
                }
                prefix.Write(chunk, 0, n);
            }
            byte[] read = prefix.ToArray();
            if (ended)
            {
                response.Content = WithHeadersOf(original, new ByteArrayContent(read));
                original.Dispose();
                return read;
            }
            response.Content = WithHeadersOf(original, new StreamContent(new PrefixedStream(read, stream)));
            return None;
        }

        private static HttpContent WithHeadersOf(HttpContent original, HttpContent replacement)
        {
            foreach (var header in original.Headers)
                replacement.Headers.TryAddWithoutValidation(header.Key, header.Value);
            return replacement;
        }

        // application/json, text/xml, application/problem+json, … but not files (PDF, images, octet-stream, CSV).
        internal static bool MayCarryError(MediaTypeHeaderValue contentType)
        {
            if (contentType == null || contentType.MediaType == null) return false;
            string type = contentType.MediaType.ToLowerInvariant();
            return type == "application/json" || type == "text/json" || type == "application/xml" ||
                type == "text/xml" || type.EndsWith("+json", StringComparison.Ordinal) ||
                type.EndsWith("+xml", StringComparison.Ordinal);
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

    // The bytes already read, then the rest of the original stream: a body handed on after a bounded look.
    internal sealed class PrefixedStream : Stream
    {
        private readonly byte[] prefix;
        private readonly Stream rest;
        private int position;

        internal PrefixedStream(byte[] prefix, Stream rest)
        {
            this.prefix = prefix;
            this.rest = rest;
        }

        public override bool CanRead { get { return true; } }
        public override bool CanSeek { get { return false; } }
        public override bool CanWrite { get { return false; } }
        public override long Length { get { throw new NotSupportedException(); } }

        public override long Position
        {
            get { throw new NotSupportedException(); }
            set { throw new NotSupportedException(); }
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (position < prefix.Length) return ReadPrefix(buffer, offset, count);
            return rest.Read(buffer, offset, count);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            if (position < prefix.Length) return Task.FromResult(ReadPrefix(buffer, offset, count));
            return rest.ReadAsync(buffer, offset, count, cancellationToken);
        }

        private int ReadPrefix(byte[] buffer, int offset, int count)
        {
            int n = Math.Min(count, prefix.Length - position);
            Buffer.BlockCopy(prefix, position, buffer, offset, n);
            position += n;
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) { throw new NotSupportedException(); }
        public override void SetLength(long value) { throw new NotSupportedException(); }
        public override void Write(byte[] buffer, int offset, int count) { throw new NotSupportedException(); }

        protected override void Dispose(bool disposing)
        {
            if (disposing) rest.Dispose();
            base.Dispose(disposing);
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
