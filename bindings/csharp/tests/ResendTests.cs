using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace XeroGuard.Tests
{
    // XeroGuardHandler's resends (xero-reference §8) over real connections to a loopback server that logs every request:
    // a write is never carried out twice, and whatever is not resent reaches the caller as it came.
    internal static class ResendTests
    {
        private const string Key = "Idempotency-Key";

        private static RetryPolicy FastPolicy()
        {
            return new RetryPolicy { BaseMs = 10, MaxBackoffMs = 50, JitterMs = 0, MaxRetries = 3, MaxWaitMs = 2000 };
        }

        // Retry-After: 0 keeps a 500's resend immediate (its default wait is 5 s).
        private static LoopbackServer.Reply Status(int status)
        {
            return LoopbackServer.Reply.With(status, "Retry-After", "0");
        }

        private static HttpRequestMessage Write(HttpMethod method, string url, string key = null)
        {
            var request = new HttpRequestMessage(method, url + "/api.xro/2.0/Invoices")
            {
                Content = new StringContent("{\"Invoices\":[{\"Type\":\"ACCREC\"}]}", Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("Xero-Tenant-Id", "acme");
            if (key != null) request.Headers.Add(Key, key);
            return request;
        }

        // Events as they fired, for the assertions.
        private sealed class Recorder
        {
            public readonly List<PacingEventArgs> Waiting = new List<PacingEventArgs>();
            public readonly List<ResendEventArgs> Retrying = new List<ResendEventArgs>();
            public readonly List<ResendEventArgs> GivingUp = new List<ResendEventArgs>();

            public XeroGuardHandler Watch(XeroGuardHandler handler)
            {
                handler.Waiting += (s, e) => { lock (Waiting) Waiting.Add(e); Assert.True(ReferenceEquals(s, handler), "sender"); };
                handler.Retrying += (s, e) => { lock (Retrying) Retrying.Add(e); };
                handler.GivingUp += (s, e) => { lock (GivingUp) GivingUp.Add(e); };
                return handler;
            }
        }

        private static HttpResponseMessage Send(HttpClient client, HttpRequestMessage request)
        {
            return client.SendAsync(request).GetAwaiter().GetResult();
        }

        public static void Register(Runner r)
        {
            r.Run("resend/put_500_then_200_sends_one_key_twice", () =>
            {
                using (var server = new LoopbackServer((n, req) => n == 1 ? Status(500) : Status(200)))
                using (var limiter = new Limiter())
                using (var client = new HttpClient(new XeroGuardHandler(limiter, FastPolicy())))
                {
                    HttpResponseMessage response = Send(client, Write(HttpMethod.Put, server.Url));
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode, "final status");
                    var seen = server.Requests;
                    Assert.Equal(2, seen.Count, "exactly two requests reached the server");
                    string key = seen[0].Header(Key);
                    Guid parsed;
                    Assert.True(key != null && Guid.TryParseExact(key, "D", out parsed), "a new GUID key: " + key);
                    Assert.Equal(key, seen[1].Header(Key), "the same key on the resend");
                    Assert.True(seen.All(x => x.Method == "PUT" && x.Body.Contains("ACCREC")), "the same request, body included");
                    Assert.Equal<int?>(2, response.GetXeroGuardAttempts(), "attempts");
                    Assert.Equal(key, response.RequestMessage.Headers.GetValues(Key).Single(), "the caller can read the key it got");
                }
            });

            r.Run("resend/get_500_then_200_is_resent_without_a_key", () =>
            {
                using (var server = new LoopbackServer((n, req) => n == 1 ? Status(500) : Status(200)))
                using (var limiter = new Limiter())
                using (var client = new HttpClient(new XeroGuardHandler(limiter, FastPolicy())))
                {
                    var request = new HttpRequestMessage(HttpMethod.Get, server.Url + "/api.xro/2.0/Invoices");
                    request.Headers.Add("Xero-Tenant-Id", "acme");
                    HttpResponseMessage response = Send(client, request);
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode, "final status");
                    Assert.Equal(2, server.Requests.Count, "resent once");
                    Assert.True(server.Requests.All(x => x.Header(Key) == null), "a GET needs no key, and gets none");
                }
            });

            r.Run("resend/post_500_without_auto_keys_is_not_resent", () =>
            {
                var events = new Recorder();
                using (var server = new LoopbackServer((n, req) => Status(500)))
                using (var limiter = new Limiter())
                using (var client = new HttpClient(events.Watch(new XeroGuardHandler(limiter, FastPolicy()) { AutoIdempotencyKeys = false })))
                {
                    HttpResponseMessage response = Send(client, Write(HttpMethod.Post, server.Url));
                    Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode, "the 500 is returned");
                    Assert.Equal(1, server.Requests.Count, "sent once: the server may have created the invoice");
                    Assert.Equal<string>(null, server.Requests[0].Header(Key), "no key was added");
                    Assert.Equal(Category.InternalError, response.GetXeroGuardClassification().Category, "classified");
                    Assert.Equal(0, events.Retrying.Count, "no resend");
                    Assert.Equal(1, events.GivingUp.Count, "one give-up");
                    Assert.Equal(GiveUpReason.UnsafeToResend, events.GivingUp[0].GiveUp, "why");
                }
            });

            r.Run("resend/reset_after_a_post_is_resent_only_with_a_key", () =>
            {
                using (var server = new LoopbackServer((n, req) => n == 1 ? LoopbackServer.Reply.ResetConnection() : Status(200)))
                using (var limiter = new Limiter())
                using (var client = new HttpClient(new XeroGuardHandler(limiter, FastPolicy())))
                {
                    HttpResponseMessage response = Send(client, Write(HttpMethod.Post, server.Url));
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode, "the resend succeeded");
                    var seen = server.Requests;
                    Assert.Equal(2, seen.Count, "the server read the request twice");
                    Assert.True(seen[0].Header(Key) != null && seen[0].Header(Key) == seen[1].Header(Key), "with one key");
                }

                var events = new Recorder();
                using (var server = new LoopbackServer((n, req) => n == 1 ? LoopbackServer.Reply.ResetConnection() : Status(200)))
                using (var limiter = new Limiter())
                using (var client = new HttpClient(events.Watch(new XeroGuardHandler(limiter, FastPolicy()) { AutoIdempotencyKeys = false })))
                {
                    Exception thrown = null;
                    try { Send(client, Write(HttpMethod.Post, server.Url)); }
                    catch (Exception e) { thrown = e; }
                    Assert.True(thrown is HttpRequestException, "the send's own exception reaches the caller: " + thrown);
                    Assert.Equal(1, server.Requests.Count, "not resent without a key");
                    Assert.Equal(1, events.GivingUp.Count, "a give-up");
                    ResendEventArgs gaveUp = events.GivingUp[0];
                    Assert.True(ReferenceEquals(thrown, gaveUp.Exception), "the very exception the send threw, unwrapped");
                    Assert.Equal(GiveUpReason.UnsafeToResend, gaveUp.GiveUp, "unsafe to resend");
                    Assert.True(gaveUp.Classification == null && gaveUp.Attempt == 1, "no response, first attempt");
                    Assert.True(thrown.StackTrace.Contains("SendAsync"), "its stack trace is kept: " + thrown.StackTrace);
                    Assert.Equal(0L, limiter.Snapshot("acme").InFlight, "the permit came back");
                }
            });

            r.Run("resend/post_429_was_not_processed_and_is_resent", () =>
            {
                using (var server = new LoopbackServer((n, req) => n == 1
                    ? LoopbackServer.Reply.With(429, "X-Rate-Limit-Problem", "minute", "Retry-After", "0")
                    : Status(200)))
                using (var limiter = new Limiter())
                using (var client = new HttpClient(new XeroGuardHandler(limiter, FastPolicy()) { AutoIdempotencyKeys = false }))
                {
                    HttpResponseMessage response = Send(client, Write(HttpMethod.Post, server.Url));
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode, "final status");
                    Assert.Equal(2, server.Requests.Count, "resent: a 429 is refused before anything is done");
                    Assert.True(server.Requests.All(x => x.Header(Key) == null), "keyless both times");
                }
            });

            r.Run("resend/workers_told_the_same_retry_after_do_not_resend_in_the_same_millisecond", () =>
            {
                // 100 workers (a limiter each, as separate processes have) meet the same 429 Retry-After: 37. The
                // handler resends after the library's wait: Retry-After plus at most the policy's JitterMs (250 ms).
                const int workers = 100;
                var waits = new List<long>();
                using (var server = new LoopbackServer((n, req) =>
                    LoopbackServer.Reply.With(429, "X-Rate-Limit-Problem", "minute", "Retry-After", "37")))
                {
                    for (int i = 0; i < workers; i++)
                    {
                        using (var limiter = new Limiter())
                        {
                            var handler = new XeroGuardHandler(limiter, new RetryPolicy());
                            // The wait is known when Retrying fires: stop there instead of sleeping through it.
                            handler.Retrying += (s, e) => { waits.Add((long)e.Wait.TotalMilliseconds); throw new OperationCanceledException("known"); };
                            using (var client = new HttpClient(handler))
                            {
                                Assert.Throws<OperationCanceledException>(() => Send(client, Write(HttpMethod.Get, server.Url)), "stopped");
                            }
                        }
                    }
                }
                Assert.True(waits.Count == workers && waits.All(w => w >= 37000 && w <= 37250),
                    "every wait within [37 s, 37.25 s]: " + string.Join(",", waits));
                // 100 draws from 251 milliseconds give ~82 distinct ones; all in one millisecond was the bug.
                Assert.True(waits.Distinct().Count() > 50, "spread: " + waits.Distinct().Count() + " distinct");
            });

            r.Run("resend/a_callers_key_is_kept_on_every_resend", () =>
            {
                using (var server = new LoopbackServer((n, req) => n < 3 ? Status(500) : Status(200)))
                using (var limiter = new Limiter())
                using (var client = new HttpClient(new XeroGuardHandler(limiter, FastPolicy())))
                {
                    HttpResponseMessage response = Send(client, Write(HttpMethod.Put, server.Url, "caller-key-7"));
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode, "final status");
                    Assert.Sequence(new[] { "caller-key-7", "caller-key-7", "caller-key-7" }, server.Requests.Select(x => x.Header(Key)),
                        "the caller's key, unchanged, on every attempt");
                }
                using (var server = new LoopbackServer((n, req) => n < 2 ? Status(500) : Status(200)))
                using (var limiter = new Limiter())
                using (var client = new HttpClient(new XeroGuardHandler(limiter, FastPolicy()) { AutoIdempotencyKeys = false }))
                {
                    Send(client, Write(HttpMethod.Post, server.Url, "caller-key-8"));
                    Assert.Equal(2, server.Requests.Count, "with auto keys off, a caller's key still makes the POST resendable");
                }
            });

            r.Run("resend/connection_refused_was_not_sent_and_is_resent", () =>
            {
                var events = new Recorder();
                using (var limiter = new Limiter())
                using (var client = new HttpClient(events.Watch(new XeroGuardHandler(limiter, FastPolicy()) { AutoIdempotencyKeys = false })))
                {
                    // Nothing listens on port 1: each attempt fails before anything is sent, so even a keyless POST is resent.
                    Exception thrown = null;
                    try { Send(client, Write(HttpMethod.Post, "http://127.0.0.1:1")); }
                    catch (Exception e) { thrown = e; }
                    Assert.True(thrown is HttpRequestException, "the last failure reaches the caller: " + thrown);
                    Assert.Equal(3, events.Retrying.Count, "resent up to the policy's 3 retries");
                    Assert.Sequence(new[] { 1, 2, 3 }, events.Retrying.Select(e => e.Attempt), "attempt numbers");
                    Assert.True(events.Retrying.All(e => e.Exception is HttpRequestException && e.Classification == null), "each with its exception");
                    Assert.Sequence(new[] { 10L, 20L, 40L }, events.Retrying.Select(e => (long)e.Wait.TotalMilliseconds), "the backoff");
                    Assert.Equal(1, events.GivingUp.Count, "then a give-up");
                    Assert.Equal(GiveUpReason.AttemptsExhausted, events.GivingUp[0].GiveUp, "retries used up");
                    Assert.True(ReferenceEquals(thrown, events.GivingUp[0].Exception), "the last exception, unwrapped");
                }
            });

            r.Run("resend/transport_failures_are_mapped_conservatively", TransportFailuresAreMappedConservatively);

            r.Run("resend/a_cancelled_call_is_never_resent", () =>
            {
                using (var cts = new CancellationTokenSource())
                {
                    var stub = new ScriptedHandler(n =>
                    {
                        cts.Cancel();
                        throw new TaskCanceledException("cancelled by the caller");
                    });
                    var events = new Recorder();
                    using (var limiter = new Limiter())
                    using (var invoker = new HttpMessageInvoker(events.Watch(new XeroGuardHandler(limiter, FastPolicy(), stub))))
                    {
                        var request = new HttpRequestMessage(HttpMethod.Get, "http://xero.invalid/api.xro/2.0/Invoices");
                        Assert.Throws<OperationCanceledException>(() => invoker.SendAsync(request, cts.Token).GetAwaiter().GetResult(), "cancelled");
                        Assert.Equal(1, stub.Calls, "not resent");
                        Assert.True(events.Retrying.Count == 0 && events.GivingUp.Count == 0, "and no give-up reported: the caller stopped it");
                    }
                }
            });

            r.Run("resend/interrupt_ends_the_handlers_wait", () =>
            {
                var stub = new ScriptedHandler(n => new HttpResponseMessage(HttpStatusCode.OK));
                var events = new Recorder();
                using (var limiter = new Limiter(new Limits { TenantMinute = new WindowLimit(1, 60000, 0) }, LimiterClock.Manual))
                using (var client = new HttpClient(events.Watch(new XeroGuardHandler(limiter,
                    new RetryPolicy { MaxWaitMs = 120000 }, stub))))
                {
                    Send(client, Write(HttpMethod.Put, "http://xero.invalid")).Dispose();
                    Task<HttpResponseMessage> waiting = client.SendAsync(Write(HttpMethod.Put, "http://xero.invalid"));
                    Thread.Sleep(100);
                    Assert.True(!waiting.IsCompleted && events.Waiting.Count == 1, "the second call waits for the minute");
                    limiter.Interrupt();
                    Assert.True(((IAsyncResult)waiting).AsyncWaitHandle.WaitOne(1000), "the call ended within 1 s");
                    Assert.Throws<LimiterInterruptedException>(() => waiting.GetAwaiter().GetResult(), "with the distinct exception");
                    Assert.Equal(1, stub.Calls, "it was never sent");
                    Assert.Equal(0, events.GivingUp.Count, "a shutdown is not a give-up");
                }
            });

            r.Run("resend/events_carry_the_call", () =>
            {
                var events = new Recorder();
                using (var server = new LoopbackServer((n, req) => n == 1 ? Status(500) : Status(200)))
                using (var limiter = new Limiter(new Limits { TenantMinute = new WindowLimit(1, 60000, 0) }, LimiterClock.Manual))
                {
                    var handler = events.Watch(new XeroGuardHandler(limiter,
                        new RetryPolicy { BaseMs = 10, MaxBackoffMs = 50, JitterMs = 0, MaxRetries = 3, MaxWaitMs = 120000 }));
                    var waiting = new TaskCompletionSource<bool>();
                    handler.Waiting += (s, e) => waiting.TrySetResult(true);
                    using (var client = new HttpClient(handler))
                    {
                        // The first send takes the minute's only call; the resend must wait for the window (manual clock).
                        Task<HttpResponseMessage> call = client.SendAsync(Write(HttpMethod.Put, server.Url));
                        Assert.True(waiting.Task.Wait(5000), "the resend waits for a permit");
                        ResendEventArgs retry = events.Retrying.Single();
                        Assert.Equal(HttpMethod.Put, retry.Method, "method");
                        Assert.Equal(server.Url + "/api.xro/2.0/Invoices", retry.RequestUri.ToString(), "URI");
                        Assert.True(retry.TenantId == "acme" && retry.Attempt == 1, "tenant and attempt");
                        Assert.True(retry.Classification.Status == 500 && retry.Exception == null, "the 500's classification");
                        Assert.True(retry.Wait == TimeSpan.FromMilliseconds(10) && retry.GiveUp == GiveUpReason.None, "wait " + retry.Wait);
                        PacingEventArgs wait = events.Waiting.Single();
                        Assert.True(wait.Attempt == 2 && wait.TenantId == "acme" && wait.Method == HttpMethod.Put, "the second attempt waits");
                        Assert.True(wait.Reason == Reason.Minute && wait.Wait == TimeSpan.FromMinutes(1) && wait.Fallback == null,
                            "for the minute window: " + wait.Wait + " " + wait.Reason);
                        Assert.True(!call.IsCompleted, "still waiting");
                        limiter.Advance(60000);
                        Assert.True(call.Wait(5000) && call.Result.StatusCode == HttpStatusCode.OK, "sent when the window moved");
                        Assert.Equal(0, events.GivingUp.Count, "no give-up");
                    }

                    // The next call would wait beyond the policy's 2 minutes: the handler gives up before sending.
                    limiter.Observe("acme", Classifier.Classify(429, new[] {
                        new KeyValuePair<string, string>("X-Rate-Limit-Problem", "day"), new KeyValuePair<string, string>("Retry-After", "3600") }, null));
                    using (var client = new HttpClient(handler))
                    {
                        var e = Assert.Throws<RateLimitWaitTooLongException>(() => Send(client, Write(HttpMethod.Put, server.Url)), "too long a wait");
                        ResendEventArgs gaveUp = events.GivingUp.Single();
                        Assert.True(ReferenceEquals(e, gaveUp.Exception) && gaveUp.GiveUp == GiveUpReason.WaitTooLong, "reported with its exception");
                        Assert.True(gaveUp.Wait == TimeSpan.FromHours(1) && gaveUp.Attempt == 1, "the wait: " + gaveUp.Wait);
                        Assert.Equal(2, server.Requests.Count, "never sent");
                    }
                }
            });
        }

        // Exceptions shaped as the .NET handlers throw them, from a scripted inner handler: what certainly failed before
        // sending resends even a keyless POST; anything that may have reached the server does not; what is not a
        // transport failure at all reaches the caller at once, even for a GET.
        private static void TransportFailuresAreMappedConservatively()
        {
            var notSent = new Func<Exception>[]
            {
                () => new HttpRequestException("refused", new SocketException((int)SocketError.ConnectionRefused)),
                () => new HttpRequestException("no such host", new SocketException((int)SocketError.HostNotFound)),
                () => new HttpRequestException("TLS", new AuthenticationException("handshake failed")),
                () => new HttpRequestException("x", new WebException("connect", WebExceptionStatus.ConnectFailure)),
                () => new HttpRequestException("x", new WebException("dns", WebExceptionStatus.NameResolutionFailure)),
                () => new HttpRequestException("x", new WebException("tls", WebExceptionStatus.SecureChannelFailure)),
            };
            var noResponse = new Func<Exception>[]
            {
                () => new HttpRequestException("reset", new IOException("read", new SocketException((int)SocketError.ConnectionReset))),
                () => new HttpRequestException("timed out reading", new IOException("read", new SocketException((int)SocketError.TimedOut))),
                () => new HttpRequestException("no detail"),
                () => new IOException("broken pipe"),
                () => new TaskCanceledException("a timeout not caused by the caller"),
                () => new HttpRequestException("x", new WebException("receive", WebExceptionStatus.ReceiveFailure)),
                () => new HttpRequestException("x", new WebException("closed", WebExceptionStatus.ConnectionClosed)),
            };
            foreach (var make in notSent.Select(m => Tuple.Create(m, 2)).Concat(noResponse.Select(m => Tuple.Create(m, 1))))
            {
                Exception first = make.Item1();
                var stub = new ScriptedHandler(n => { if (n == 1) throw first; return new HttpResponseMessage(HttpStatusCode.OK); });
                using (var limiter = new Limiter())
                using (var invoker = new HttpMessageInvoker(new XeroGuardHandler(limiter, FastPolicy(), stub) { AutoIdempotencyKeys = false }))
                {
                    var request = new HttpRequestMessage(HttpMethod.Post, "http://xero.invalid/api.xro/2.0/Invoices") { Content = new StringContent("{}") };
                    string what = first.GetType().Name + " / " + (first.InnerException == null ? "-" : first.InnerException.GetType().Name + " " +
                        first.InnerException.Message);
                    if (make.Item2 == 2)
                    {
                        Assert.Equal(HttpStatusCode.OK, invoker.SendAsync(request, CancellationToken.None).Result.StatusCode, what + ": resent");
                    }
                    else
                    {
                        Exception thrown = null;
                        try { invoker.SendAsync(request, CancellationToken.None).GetAwaiter().GetResult(); }
                        catch (Exception e) { thrown = e; }
                        Assert.True(ReferenceEquals(first, thrown), what + ": reaches the caller unchanged, got " + thrown);
                    }
                    Assert.Equal(make.Item2, stub.Calls, what + ": sends");
                }
            }

            var bug = new InvalidOperationException("not a transport failure");
            var failing = new ScriptedHandler(n => { throw bug; });
            using (var limiter = new Limiter())
            using (var invoker = new HttpMessageInvoker(new XeroGuardHandler(limiter, FastPolicy(), failing)))
            {
                var get = new HttpRequestMessage(HttpMethod.Get, "http://xero.invalid/api.xro/2.0/Invoices");
                var e = Assert.Throws<InvalidOperationException>(() => invoker.SendAsync(get, CancellationToken.None).GetAwaiter().GetResult(), "a bug");
                Assert.True(ReferenceEquals(bug, e) && failing.Calls == 1, "reaches the caller at once, even for a GET");
            }
        }
    }
}
