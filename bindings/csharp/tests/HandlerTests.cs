using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace XeroGuard.Tests
{
    // An in-process stand-in for the network: answers each call from a script and remembers what it was sent.
    internal sealed class ScriptedHandler : HttpMessageHandler
    {
        private readonly Func<int, HttpResponseMessage> script;
        public readonly List<string> Bodies = new List<string>();
        public int Calls;

        public ScriptedHandler(Func<int, HttpResponseMessage> script) { this.script = script; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            int n = Interlocked.Increment(ref Calls);
            string body = request.Content == null ? null : await request.Content.ReadAsStringAsync();
            lock (Bodies) Bodies.Add(body);
            HttpResponseMessage response = script(n);
            response.RequestMessage = request;
            return response;
        }
    }

    // A handler registered before XeroGuardHandler in a pipeline (logging, auth, …): counts what passes through.
    internal sealed class CountingDelegatingHandler : DelegatingHandler
    {
        public int Calls;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Calls);
            return base.SendAsync(request, cancellationToken);
        }
    }

    internal static class HandlerTests
    {
        // What IHttpClientFactory's handler builder does with the handlers of AddHttpMessageHandler: it refuses one
        // whose InnerHandler is set, links them outermost first, and puts the primary handler last.
        internal static HttpMessageHandler FactoryPipeline(HttpMessageHandler primary, params DelegatingHandler[] handlers)
        {
            HttpMessageHandler next = primary;
            for (int i = handlers.Length - 1; i >= 0; i--)
            {
                if (handlers[i].InnerHandler != null)
                    throw new InvalidOperationException("The 'InnerHandler' property must be null. 'DelegatingHandler' instances " +
                        "provided to 'HttpMessageHandlerBuilder' must not be reused or cached.");
                handlers[i].InnerHandler = next;
                next = handlers[i];
            }
            return next;
        }

        private static HttpResponseMessage Respond(int status, params string[] headers)
        {
            var r = new HttpResponseMessage((HttpStatusCode)status) { Content = new ByteArrayContent(new byte[0]) };
            for (int i = 0; i < headers.Length; i += 2) r.Headers.TryAddWithoutValidation(headers[i], headers[i + 1]);
            return r;
        }

        private static HttpRequestMessage Get(string url, string tenant)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (tenant != null) request.Headers.Add("Xero-Tenant-Id", tenant);
            return request;
        }

        private static RetryPolicy FastPolicy()
        {
            return new RetryPolicy { BaseMs = 10, MaxBackoffMs = 50, JitterMs = 0, MaxRetries = 3, MaxWaitMs = 2000 };
        }

        public static void Register(Runner r, string serverUrl)
        {
            r.Run("handler/retries_retryable_and_resends_body", () =>
            {
                var stub = new ScriptedHandler(n => n == 1 ? Respond(500, "Retry-After", "0") : Respond(200));
                using (var limiter = new Limiter())
                using (var client = new HttpClient(new XeroGuardHandler(limiter, FastPolicy(), stub)))
                {
                    var request = new HttpRequestMessage(HttpMethod.Post, "http://xero.invalid/api.xro/2.0/Invoices")
                    {
                        Content = new StringContent("{\"Invoices\":[]}", Encoding.UTF8, "application/json"),
                    };
                    request.Headers.Add("Xero-Tenant-Id", "acme");
                    HttpResponseMessage response = client.SendAsync(request).Result;
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode, "final status");
                    Assert.Equal(2, stub.Calls, "one retry");
                    Assert.Sequence(new[] { "{\"Invoices\":[]}", "{\"Invoices\":[]}" }, stub.Bodies, "the body was sent both times");
                    Classification c = response.GetXeroGuardClassification();
                    Assert.True(c != null && c.Category == Category.Success, "the final classification is on the response");
                    Assert.Equal<int?>(2, response.GetXeroGuardAttempts(), "attempts");
                    // netstandard2.0 keeps them in Properties (Options on .NET 5+), under the documented keys.
                    Assert.True(ReferenceEquals(c, response.RequestMessage.Properties[HttpResponseMessageExtensions.ClassificationProperty]),
                        "under the documented key");
                    Assert.Equal(2, (int)response.RequestMessage.Properties["XeroGuard.Attempts"], "attempts key");
                    Assert.Equal(0L, limiter.Snapshot("acme").InFlight, "permits released");
                    Assert.Equal(2L, limiter.Snapshot("acme").Minute.Count, "both sends counted");
                }
            });

            r.Run("handler/does_not_retry_what_is_not_retryable", () =>
            {
                var stub = new ScriptedHandler(n => Respond(401, "WWW-Authenticate", "Bearer error=\"invalid_token\""));
                using (var limiter = new Limiter())
                using (var client = new HttpClient(new XeroGuardHandler(limiter, FastPolicy(), stub)))
                {
                    HttpResponseMessage response = client.SendAsync(Get("http://xero.invalid/api.xro/2.0/Contacts", "acme")).Result;
                    Assert.Equal(1, stub.Calls, "sent once");
                    Classification c = response.GetXeroGuardClassification();
                    Assert.Equal(RecommendedAction.RefreshToken, c.Action, "the caller is told to refresh the token");
                    Assert.Equal<AuthProblem?>(AuthProblem.InvalidToken, c.AuthProblem, "auth problem");
                }
            });

            r.Run("handler/gives_up_after_max_retries", () =>
            {
                var stub = new ScriptedHandler(n => Respond(500, "Retry-After", "0"));
                using (var limiter = new Limiter())
                using (var client = new HttpClient(new XeroGuardHandler(limiter, FastPolicy(), stub)))
                {
                    HttpResponseMessage response = client.SendAsync(Get("http://xero.invalid/api.xro/2.0/Contacts", "acme")).Result;
                    Assert.Equal(4, stub.Calls, "first call plus 3 retries");
                    Assert.Equal(Category.InternalError, response.GetXeroGuardClassification().Category, "the last answer is returned");
                    Assert.Equal<int?>(4, response.GetXeroGuardAttempts(), "attempts");
                }
            });

            r.Run("handler/never_sleeps_through_a_day_limit", () =>
            {
                var stub = new ScriptedHandler(n => Respond(429, "X-Rate-Limit-Problem", "day", "Retry-After", "66975", "X-DayLimit-Remaining", "0"));
                using (var limiter = new Limiter())
                using (var client = new HttpClient(new XeroGuardHandler(limiter, null, stub)))
                {
                    var sw = Stopwatch.StartNew();
                    HttpResponseMessage response = client.SendAsync(Get("http://xero.invalid/api.xro/2.0/Contacts", "acme")).Result;
                    Assert.Equal((HttpStatusCode)429, response.StatusCode, "the 429 comes back");
                    Classification c = response.GetXeroGuardClassification();
                    Assert.Equal<RateLimitProblem?>(RateLimitProblem.Day, c.RateLimitProblem, "day limit");
                    Assert.Equal(1, stub.Calls, "not retried");
                    var e = Assert.Throws<RateLimitWaitTooLongException>(
                        () => client.SendAsync(Get("http://xero.invalid/api.xro/2.0/Contacts", "acme")).Wait(), "the next call for the tenant");
                    Assert.Equal(1, stub.Calls, "and it was never sent");
                    Assert.True(e.Wait > TimeSpan.FromHours(18) && e.TenantId == "acme", "the limiter's block: " + e.Message);
                    Assert.True(sw.ElapsedMilliseconds < 5000, "no sleeping: " + sw.ElapsedMilliseconds + " ms");
                    HttpResponseMessage other = client.SendAsync(Get("http://xero.invalid/api.xro/2.0/Contacts", "other")).Result;
                    Assert.Equal(2, stub.Calls, "other tenants still call");
                    Assert.Equal((HttpStatusCode)429, other.StatusCode, "scripted answer");
                }
            });

            r.Run("handler/releases_permit_when_send_throws", () =>
            {
                // A failure with no detail may have reached the server: a GET is resent, up to the policy's 3 retries.
                var failures = new List<Exception>();
                var stub = new ScriptedHandler(n =>
                {
                    if (n > 4) return Respond(200);
                    var e = new HttpRequestException("connection failed " + n);
                    failures.Add(e);
                    throw e;
                });
                var limits = new Limits { TenantConcurrency = 1 };
                using (var limiter = new Limiter(limits))
                using (var client = new HttpClient(new XeroGuardHandler(limiter, FastPolicy(), stub)))
                {
                    var e = Assert.Throws<HttpRequestException>(() => client.SendAsync(Get("http://xero.invalid/api.xro/2.0/Contacts", "acme")).Wait(), "network error surfaces");
                    Assert.Equal(4, stub.Calls, "sent once and resent 3 times");
                    Assert.True(ReferenceEquals(failures.Last(), e), "the last failure reaches the caller: " + e.Message);
                    Assert.Equal(0L, limiter.Snapshot("acme").InFlight, "the permits came back");
                    var ok = client.SendAsync(Get("http://xero.invalid/api.xro/2.0/Contacts", "acme"));
                    Assert.True(ok.Wait(TimeSpan.FromSeconds(5)) && ok.Result.StatusCode == HttpStatusCode.OK, "the next call is not stuck");
                    var tenantless = client.SendAsync(Get("http://xero.invalid/connections", null)).Result;
                    Assert.Equal(Category.Success, tenantless.GetXeroGuardClassification().Category, "tenantless calls pass too");
                }
            });

            r.Run("handler/fits_an_http_client_factory_pipeline", () =>
            {
                var stub = new ScriptedHandler(n => n == 1 ? Respond(500, "Retry-After", "0") : Respond(200));
                var outer = new CountingDelegatingHandler();
                using (var limiter = new Limiter())
                {
                    var guard = new XeroGuardHandler(limiter, FastPolicy());
                    Assert.True(guard.InnerHandler == null, "no inner handler of its own");
                    Assert.Throws<InvalidOperationException>(() => FactoryPipeline(new ScriptedHandler(n => Respond(200)),
                        new XeroGuardHandler(limiter, FastPolicy(), new ScriptedHandler(n => Respond(200)))), "the factory refuses one with an inner handler");
                    using (var client = new HttpClient(FactoryPipeline(stub, outer, guard)))
                    {
                        HttpResponseMessage response = client.SendAsync(Get("http://xero.invalid/api.xro/2.0/Contacts", "acme")).Result;
                        Assert.Equal(HttpStatusCode.OK, response.StatusCode, "final status");
                        Assert.True(ReferenceEquals(stub, guard.InnerHandler), "the factory's primary handler is the one used");
                        Assert.Equal(1, outer.Calls, "the outer handler saw one call");
                        Assert.Equal(2, stub.Calls, "the guard retried through the primary handler");
                        Assert.Equal<int?>(2, response.GetXeroGuardAttempts(), "attempts");
                        Assert.Equal(2L, limiter.Snapshot("acme").Minute.Count, "both sends paced");
                    }
                }
            });

            r.Run("server/without_inner_handler_sends_through_a_default_one", () =>
            {
                Assert.True(!string.IsNullOrEmpty(serverUrl), "XG_SERVER_URL names the running Xero-like server");
                using (var limiter = new Limiter())
                {
                    var guard = new XeroGuardHandler(limiter);
                    using (var client = new HttpClient(guard))
                    {
                        // Many first requests at once: the default inner handler is set exactly once, before any is sent.
                        var tasks = Enumerable.Range(0, 8).Select(i => client.SendAsync(Get(serverUrl + "/api.xro/2.0/Organisation", "default-" + i))).ToArray();
                        Assert.True(Task.WaitAll(tasks, TimeSpan.FromSeconds(30)), "the calls finished");
                        Assert.True(tasks.All(t => t.Result.StatusCode == HttpStatusCode.OK), "every call succeeded");
                        Assert.True(guard.InnerHandler is HttpClientHandler, "a default HttpClientHandler: " + guard.InnerHandler);
                        Assert.True(tasks.All(t => t.Result.GetXeroGuardClassification().Category == Category.Success), "classified");
                    }
                }
            });

            r.Run("server/handler_prevents_every_429", () => AgainstServer(serverUrl));
            r.Run("server/handler_paces_through_a_redis_limiter", () => AgainstServerThroughRedis(serverUrl));
            r.Run("server/handler_retries_what_the_server_rejects", () => RetriesAgainstServer(serverUrl));
        }

        // Many parallel calls: without the handler the server answers 429s; with it, not one.
        private static void AgainstServer(string serverUrl)
        {
            Assert.True(!string.IsNullOrEmpty(serverUrl), "XG_SERVER_URL names the running Xero-like server (run-tests.sh starts it)");
            ServicePointManager.DefaultConnectionLimit = 64;
            const int callsPerTenant = 130;

            using (var plain = new HttpClient())
            {
                Post(plain, serverUrl + "/__control/reset");
                var responses = Burst(plain, serverUrl, new[] { "raw-a", "raw-b" }, callsPerTenant);
                int tooMany = responses.Count(s => s == 429);
                Console.WriteLine("     without the handler: {0} calls, {1} answered 429", responses.Count, tooMany);
                Assert.True(tooMany > 0, "the server limits unpaced calls (otherwise this test proves nothing)");
                Assert.Equal(tooMany, (int)Stats(plain, serverUrl)["count_429"].Long.Value, "the server counted them");

                Post(plain, serverUrl + "/__control/reset");
                using (var limiter = new Limiter(ServerScaledLimits()))
                    PacedBurst(plain, serverUrl, limiter, new[] { "paced-a", "paced-b" }, callsPerTenant);
            }
        }

        // The same paced burst, through a limiter whose state is in Redis: still not one 429.
        private static void AgainstServerThroughRedis(string serverUrl)
        {
            Assert.True(!string.IsNullOrEmpty(serverUrl), "XG_SERVER_URL names the running Xero-like server");
            ServicePointManager.DefaultConnectionLimit = 64;
            using (var plain = new HttpClient())
            using (var limiter = new Limiter(ServerScaledLimits(), new RedisOptions(RedisTests.Url) { KeyPrefix = RedisTests.Prefix("server") }))
            {
                Post(plain, serverUrl + "/__control/reset");
                PacedBurst(plain, serverUrl, limiter, new[] { "redis-a", "redis-b" }, 70);
            }
        }

        // Xero's limits scaled to the server's 1-second minute; the margin covers the send-to-arrival jitter.
        private static Limits ServerScaledLimits()
        {
            return new Limits
            {
                TenantMinute = new WindowLimit(60, 1000, 150),
                TenantDay = new WindowLimit(5000, 86400000, 0),
                TenantConcurrency = 5,
                AppMinute = new WindowLimit(10000, 1000, 150),
            };
        }

        private static void PacedBurst(HttpClient plain, string serverUrl, Limiter limiter, string[] tenants, int callsPerTenant)
        {
            var sw = Stopwatch.StartNew();
            using (var paced = new HttpClient(new XeroGuardHandler(limiter)))
            {
                var classifications = new List<Classification>();
                var statuses = Burst(paced, serverUrl, tenants, callsPerTenant, classifications);
                JsonNode stats = Stats(plain, serverUrl);
                Console.WriteLine("     with the handler: {0} calls in {1} ms, server stats {2}", statuses.Count, sw.ElapsedMilliseconds,
                    string.Join(", ", new[] { "total_requests", "count_429" }.Select(k => k + "=" + stats[k].String)));
                Assert.Equal(0, statuses.Count(s => s == 429), "no 429 reached the caller");
                Assert.Equal(0L, stats["count_429"].Long, "the server answered no 429");
                Assert.Equal((long)(tenants.Length * callsPerTenant), stats["total_requests"].Long, "no retries were needed");
                Assert.True(statuses.All(s => s == 200), "every call succeeded");
                Assert.True(classifications.All(c => c != null && c.Category == Category.Success), "each response carries its classification");
                foreach (string t in tenants)
                {
                    Assert.Equal((long)callsPerTenant, stats["admitted"][t].Long, t + " admitted");
                    Assert.True(stats["max_in_flight"][t].Long <= 5, t + " stayed within 5 in flight");
                    Assert.True(stats["max_admitted_in_rolling_minute"][t].Long <= 60, t + " stayed within 60 per minute");
                    Assert.Equal(0L, limiter.Snapshot(t).InFlight, t + " permits all released");
                }
                Assert.True(sw.ElapsedMilliseconds > 1000, "pacing took time (over 60 calls per tenant need over one minute of 60)");
            }
        }

        // No concurrency cap in the limiter, so the server's (5 in flight) rejects some calls; the handler
        // resends each over the real transport, with its body, until it succeeds.
        private static void RetriesAgainstServer(string serverUrl)
        {
            Assert.True(!string.IsNullOrEmpty(serverUrl), "XG_SERVER_URL names the running Xero-like server");
            ServicePointManager.DefaultConnectionLimit = 64;
            var limits = new Limits { TenantMinute = new WindowLimit(60, 1000, 150), TenantConcurrency = 0 };
            var policy = new RetryPolicy { MaxRetries = 10, MaxWaitMs = 10000 };
            int retries = 0;
            using (var plain = new HttpClient())
            using (var limiter = new Limiter(limits))
            using (var client = new HttpClient(new XeroGuardHandler(limiter, policy)))
            {
                for (int round = 0; round < 3 && retries == 0; round++)
                {
                    Post(plain, serverUrl + "/__control/reset");
                    string tenant = "retry-" + round;
                    var start = new ManualResetEventSlim();
                    var tasks = Enumerable.Range(0, 30).Select(i => Task.Run(async () =>
                    {
                        start.Wait();
                        var request = new HttpRequestMessage(HttpMethod.Post, serverUrl + "/api.xro/2.0/Contacts")
                        {
                            Content = new StringContent("{\"Contacts\":[{\"Name\":\"n" + i + "\"}]}", Encoding.UTF8, "application/json"),
                        };
                        request.Headers.Add("Xero-Tenant-Id", tenant);
                        using (HttpResponseMessage response = await client.SendAsync(request))
                            return Tuple.Create((int)response.StatusCode, response.GetXeroGuardAttempts().Value);
                    })).ToArray();
                    start.Set();
                    Assert.True(Task.WaitAll(tasks, TimeSpan.FromSeconds(60)), "the round finished");
                    JsonNode stats = Stats(plain, serverUrl);
                    Assert.True(tasks.All(t => t.Result.Item1 == 200), "every call ended in success");
                    retries = tasks.Sum(t => t.Result.Item2 - 1);
                    long rejected = stats["count_429"].Long.Value;
                    Console.WriteLine("     round {0}: {1} rejected by the server, {2} retries", round, rejected, retries);
                    Assert.Equal(rejected, (long)retries, "one retry per rejection");
                    Assert.Equal(30L, stats["admitted"][tenant].Long, "each call admitted once");
                }
                Assert.True(retries > 0, "the server rejected some unpaced concurrency (otherwise nothing was retried)");
            }
        }

        private static List<int> Burst(HttpClient client, string serverUrl, string[] tenants, int perTenant, List<Classification> classifications = null)
        {
            var gate = new SemaphoreSlim(24);
            var tasks = tenants.SelectMany(t => Enumerable.Range(0, perTenant).Select(i => Task.Run(async () =>
            {
                await gate.WaitAsync();
                try
                {
                    using (HttpResponseMessage response = await client.SendAsync(Get(serverUrl + "/api.xro/2.0/Invoices", t)))
                    {
                        if (classifications != null) lock (classifications) classifications.Add(response.GetXeroGuardClassification());
                        return (int)response.StatusCode;
                    }
                }
                finally
                {
                    gate.Release();
                }
            }))).ToArray();
            Assert.True(Task.WaitAll(tasks, TimeSpan.FromSeconds(90)), "the burst finished");
            return tasks.Select(x => x.Result).ToList();
        }

        private static void Post(HttpClient client, string url)
        {
            using (var response = client.PostAsync(url, new ByteArrayContent(new byte[0])).Result)
                Assert.Equal(HttpStatusCode.OK, response.StatusCode, "POST " + url);
        }

        private static JsonNode Stats(HttpClient client, string serverUrl)
        {
            return JsonNode.Parse(client.GetByteArrayAsync(serverUrl + "/__stats").Result);
        }
    }
}
