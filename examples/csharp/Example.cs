// The C# quick start as a program: classify a Xero response, then pace calls with a limiter.
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

        // 2. Pace calls: at most 2 per second for this tenant; the third call waits for the window.
        var limits = new Limits { TenantMinute = new WindowLimit(2, 1000, 0) };
        var sw = Stopwatch.StartNew();
        using (var limiter = new Limiter(limits))
        {
            for (int i = 1; i <= 3; i++)
            {
                using (Permit permit = limiter.AcquireAsync("tenant-1").Result)
                {
                    Console.WriteLine("call {0} at {1} ms", i, sw.ElapsedMilliseconds);
                    limiter.Observe("tenant-1", Classifier.Classify(200, null, null));
                }
            }
        }
        if (sw.ElapsedMilliseconds < 900) { Console.WriteLine("the third call should have waited"); return 1; }

        // 3. Or let an HttpClient handler do both, retries included.
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
