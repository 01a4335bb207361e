// The C# quick start as a program: classify a Xero response, pace calls with a limiter, decide resends, shut down.
// Run by bindings/csharp/run-tests.sh; with XG_SERVER_URL set it also calls the local Xero-like server.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net.Http;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using XeroGuard;

internal static class Example
{
    private static int Main()
    {
        // 1. What does this response mean, and what should the caller do?
        var headers = new[]
        {
            new KeyValuePair<string, string>("X-Rate-Limit-Problem", "minute"),
            new KeyValuePair<string, string>("Retry-After", "12"),
        };
        Classification c = Classifier.Classify(429, headers, new byte[0]);
        Console.WriteLine("429: category={0} action={1} problem={2} wait={3} ms",
            Vocabulary.Name(c.Category), Vocabulary.Name(c.Action), Vocabulary.Name(c.RateLimitProblem.Value), c.RecommendedWaitMs);

        byte[] body = Encoding.UTF8.GetBytes(
            "{\"ErrorNumber\":10,\"Type\":\"ValidationException\",\"Message\":\"A validation exception occurred\"," +
            "\"Elements\":[{\"ValidationErrors\":[{\"Message\":\"Email address must be valid\"}]}]}");
        Classification v = Classifier.Classify(400, null, body);
        Console.WriteLine("400: {0}, fix: {1}", Vocabulary.Name(v.Category), string.Join("; ", v.ValidationMessages));

        // 2. Pace calls: at most 2 per second for this tenant; the third call waits for the window. A wait the library
        // gives up (longer than the timeout) throws RateLimitWaitTooLongException; the token can cancel it.
        var limits = new Limits { TenantMinute = new WindowLimit(2, 1000, 0) };
        var sw = Stopwatch.StartNew();
        using (var limiter = new Limiter(limits))
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            for (int i = 1; i <= 3; i++)
            {
                using (Permit permit = limiter.AcquireAsync("tenant-1", TimeSpan.FromSeconds(5), cts.Token).Result)
                {
                    Console.WriteLine("call {0} at {1} ms", i, sw.ElapsedMilliseconds);
                    limiter.Observe("tenant-1", Classifier.Classify(200, null, null));
                }
            }
        }
        if (sw.ElapsedMilliseconds < 900) { Console.WriteLine("the third call should have waited"); return 1; }

        // 3. Resends never duplicate a write: a POST answered 500 may have been carried out, so it is resent only with an
        // Idempotency-Key (XeroGuardHandler adds one to every write); a 429 was refused before anything was done.
        Classification failed = Classifier.Classify(500, null, null);
        BackoffDecision keyless = Resend.Decide("POST", false, failed, 1);
        BackoffDecision keyed = Resend.Decide("POST", true, failed, 1);
        Console.WriteLine("POST answered 500: without a key {0}, with one resend in {1} ms", Vocabulary.Name(keyless.GiveUp), keyed.WaitMs);
        if (keyless.Retry || !keyed.Retry) return 1;

        // 4. Shutting down: Interrupt ends every wait (here a thread blocked for a permit), then dispose.
        using (var limiter = new Limiter(new Limits { TenantConcurrency = 1 }))
        {
            Permit held = limiter.Acquire("busy").Permit;
            Exception ended = null;
            var waiter = new Thread(() =>
            {
                try { limiter.AcquireWait("busy", Timeout.InfiniteTimeSpan); }
                catch (LimiterInterruptedException e) { ended = e; }
            });
            waiter.Start();
            Thread.Sleep(50);
            limiter.Interrupt();
            waiter.Join();
            held.Dispose();
            Console.WriteLine("the blocked wait ended: {0}", ended == null ? "no" : ended.GetType().Name);
            if (ended == null) return 1;
        }

        // 5. Or let an HttpClient handler do it all, resends included.
        string server = Environment.GetEnvironmentVariable("XG_SERVER_URL");
        if (!string.IsNullOrEmpty(server))
        {
            using (var limiter = new Limiter(new Limits { TenantMinute = new WindowLimit(60, 1000, 150) }))
            using (var client = new HttpClient(new XeroGuardHandler(limiter)))
            {
                for (int i = 0; i < 3; i++)
                {
                    var request = new HttpRequestMessage(HttpMethod.Get, server + "/api.xro/2.0/Organisation");
                    request.Headers.Add("Xero-Tenant-Id", "example-tenant");
                    using (HttpResponseMessage response = client.SendAsync(request).Result)
                    {
                        Classification r = response.GetXeroGuardClassification();
                        Console.WriteLine("GET Organisation: {0} {1}, {2} calls left this minute, sent {3} time(s)",
                            (int)response.StatusCode, Vocabulary.Name(r.Category), r.MinuteRemaining, response.GetXeroGuardAttempts());
                        if (r.Category != Category.Success || r.Action != RecommendedAction.None) return 1;
                    }
                }
            }
        }
        Console.WriteLine("example done");
        return 0;
    }
}
