// A fleet worker in C# (tests/fleet/test_fleet.py runs several under Mono, beside C and Python ones): one HttpClient
// whose XeroGuardHandler paces every call through a shared (Redis) Limiter, with tasks per tenant.
//
// Protocol (as tests/fleet/worker.c): after setup it prints "READY <unix time, s> <CLOCK_MONOTONIC, ms>", waits for
// "GO <run ms>" on stdin, calls until run ms have passed, then prints one JSON line
//   {"id", "language", "calls": [[seq, sent_ms, status], ...], "errors": [...]}
// where sent_ms is CLOCK_MONOTONIC when the request left the guard (permit granted) for the sender.
//
// Usage: mono FleetWorker.exe --library PATH --id ID --redis URL --prefix P --port PORT --tenants a,b
//        --threads-per-tenant K --minute L/W/M --day L/W/M --concurrency N --app L/W/M --permit-timeout-ms MS
//        [--breaker-cooldown-ms MS]   (without it, the library's default)
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using XeroGuard;

static class FleetWorker
{
    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec value);

    private const int ClockMonotonic = 1;
    private const string SentProperty = "fleet.sent_ms";

    // The same clock as the server's log and the other workers (Stopwatch's base is not specified).
    private static double MonotonicMs()
    {
        Timespec now;
        ClockGetTime(ClockMonotonic, out now);
        return now.Seconds * 1000.0 + now.Nanoseconds / 1e6;
    }

    // Between the guard and the sender: stamps the moment a paced request is handed on to be sent.
    private sealed class StampingHandler : DelegatingHandler
    {
        public StampingHandler(HttpMessageHandler inner) : base(inner) { }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken token)
        {
            request.Properties[SentProperty] = MonotonicMs();
            return base.SendAsync(request, token);
        }
    }

    private static WindowLimit Window(string text)
    {
        string[] parts = text.Split('/');
        CultureInfo c = CultureInfo.InvariantCulture;
        return new WindowLimit(int.Parse(parts[0], c), long.Parse(parts[1], c), long.Parse(parts[2], c));
    }

    private static string JsonText(string text)
    {
        var sb = new StringBuilder();
        foreach (char c in text)
        {
            if (c == '"' || c == '\\') sb.Append('\\').Append(c);
            else if (c < ' ') sb.AppendFormat(CultureInfo.InvariantCulture, "\\u{0:x4}", (int)c);
            else sb.Append(c);
        }
        return sb.ToString();
    }

    private static int Main(string[] args)
    {
        var a = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2) a[args[i]] = args[i + 1];
        foreach (string required in new[] { "--library", "--id", "--redis", "--prefix", "--port", "--tenants" })
        {
            if (!a.ContainsKey(required))
            {
                Console.Error.WriteLine("FleetWorker: {0} is required", required);
                return 2;
            }
        }
        Library.NativeLibraryPath = a["--library"];
        string id = a["--id"];
        int port = int.Parse(a["--port"], CultureInfo.InvariantCulture);
        string[] tenants = a["--tenants"].Split(',');
        int perTenant = a.ContainsKey("--threads-per-tenant")
            ? int.Parse(a["--threads-per-tenant"], CultureInfo.InvariantCulture) : 1;
        var limits = Limits.Exact();
        limits.TenantMinute = Window(a["--minute"]);
        limits.TenantDay = Window(a["--day"]);
        limits.AppMinute = Window(a["--app"]);
        limits.TenantConcurrency = int.Parse(a["--concurrency"], CultureInfo.InvariantCulture);
        limits.PermitTimeoutMs = long.Parse(a["--permit-timeout-ms"], CultureInfo.InvariantCulture);

        // Mono's HttpClientHandler keeps 2 connections per host unless told otherwise: requests that hold a permit
        // must not queue for a connection, nor wait for an ACK before leaving (Nagle).
        ServicePointManager.DefaultConnectionLimit = 64;
        ServicePointManager.UseNagleAlgorithm = false;
        ServicePointManager.Expect100Continue = false;

        string baseUrl = "http://127.0.0.1:" + port;
        var redis = new RedisOptions(a["--redis"]) { KeyPrefix = a["--prefix"] };
        if (a.ContainsKey("--breaker-cooldown-ms"))
            redis.BreakerCooldown = TimeSpan.FromMilliseconds(
                long.Parse(a["--breaker-cooldown-ms"], CultureInfo.InvariantCulture));
        using (var limiter = new Limiter(limits, redis))
        using (var sender = new HttpClientHandler())
        using (var http = new HttpClient(new XeroGuardHandler(limiter, null, new StampingHandler(sender))))
        using (var warm = new HttpClient(sender, false))
        {
            // Opens the connections (and starts the server's handler threads) outside the limits: /__stats is not an
            // API call. Through the same sender, so the run reuses them.
            var warming = new List<Task<HttpResponseMessage>>();
            for (int i = 0; i < tenants.Length * perTenant; i++) warming.Add(warm.GetAsync(baseUrl + "/__stats"));
            foreach (var t in warming) t.Result.Dispose();
            // One call through the whole guarded path (handler, classification, observe) with a limiter of its own,
            // so the run's first calls do not wait for Mono to compile it; the harness clears the server's counts
            // before the run.
            using (var local = new Limiter(limits))
            using (var warmGuard = new HttpClient(new XeroGuardHandler(local, null, new StampingHandler(sender)),
                false))
            {
                var request = new HttpRequestMessage(HttpMethod.Get, baseUrl + "/api.xro/2.0/Invoices/warm-up-" + id);
                request.Headers.Add(XeroGuardHandler.TenantHeader, "warm-up-" + id);
                warmGuard.SendAsync(request).Result.Dispose();
            }

            Console.WriteLine("READY {0} {1}", DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                MonotonicMs().ToString("F3", CultureInfo.InvariantCulture));
            string go = Console.ReadLine();
            int runMs;
            if (go == null || !go.StartsWith("GO ", StringComparison.Ordinal) ||
                !int.TryParse(go.Substring(3).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out runMs))
            {
                Console.Error.WriteLine("FleetWorker: expected 'GO <run ms>' on stdin, got {0}", go ?? "EOF");
                return 2;
            }
            double until = MonotonicMs() + runMs;
            var calls = new ConcurrentQueue<string>();
            var errors = new ConcurrentQueue<string>();
            int seq = -1;
            var loops = new List<Task>();
            for (int i = 0; i < tenants.Length * perTenant; i++)
            {
                string tenant = tenants[i % tenants.Length];
                loops.Add(Task.Run(async () =>
                {
                    try
                    {
                        while (MonotonicMs() < until)
                        {
                            int n = Interlocked.Increment(ref seq);
                            string url = string.Format(CultureInfo.InvariantCulture, "{0}/api.xro/2.0/Invoices/{1}-{2}",
                                baseUrl, id, n);
                            var request = new HttpRequestMessage(HttpMethod.Get, url);
                            request.Headers.Add(XeroGuardHandler.TenantHeader, tenant);
                            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "fleet");
                            using (HttpResponseMessage response = await http.SendAsync(request).ConfigureAwait(false))
                            {
                                await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                                double sent = (double)request.Properties[SentProperty];
                                calls.Enqueue(string.Format(CultureInfo.InvariantCulture, "[{0}, {1:F3}, {2}]", n, sent,
                                    (int)response.StatusCode));
                            }
                        }
                    }
                    catch (Exception e)
                    {
                        errors.Enqueue(tenant + ": " + e.GetType().Name + ": " + e.Message);
                    }
                }));
            }
            Task.WaitAll(loops.ToArray());
            var errorTexts = new List<string>();
            foreach (string e in errors) errorTexts.Add("\"" + JsonText(e) + "\"");
            Console.WriteLine("{{\"id\": \"{0}\", \"language\": \"csharp\", \"calls\": [{1}], \"errors\": [{2}]}}",
                JsonText(id), string.Join(", ", calls), string.Join(", ", errorTexts));
        }
        return 0;
    }
}
