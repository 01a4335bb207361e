using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace XeroGuard.Tests
{
    // Limiter.GetStatistics and the events a logger listens to: waits, outages of the shared store. Waits run on a
    // manual clock; the tests poll only for another thread's first step, never for a window.
    internal static class StatisticsTests
    {
        private const string T = "4f8a2a1e-0000-4000-8000-000000000001";

        private static Limits Exact60()
        {
            return new Limits { TenantMinute = new WindowLimit(60, 60000, 0), TenantConcurrency = 0 };
        }

        private static void FillMinute(Limiter l)
        {
            for (int i = 0; i < 60; i++) l.Record(T);
        }

        internal static void WaitUntil(Func<bool> condition, string what)
        {
            var waited = Stopwatch.StartNew();
            while (!condition())
            {
                Assert.True(waited.ElapsedMilliseconds < 10000, "timed out waiting until " + what);
                Thread.Sleep(1);
            }
        }

        private static byte[] Raw(string response)
        {
            return Encoding.ASCII.GetBytes(response);
        }

        public static void Register(Runner r)
        {
            r.Run("stats/decisions_responses_and_429s_are_counted", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                {
                    LimiterStatistics fresh = l.GetStatistics();
                    Assert.True(fresh.Granted == 0 && fresh.RefusedTotal == 0 && fresh.WaitsStarted == 0, "a new limiter: zeros");
                    Assert.Equal(Enum.GetValues(typeof(Reason)).Length, fresh.Refused.Count, "every reason, zeros included");
                    Assert.Sequence(new[] { 10L, 100, 1000, 10000, 65000, 600000 },
                        fresh.WaitBucketUpperBounds.Take(6).Select(b => (long)b.TotalMilliseconds), "bucket bounds");
                    Assert.Equal(TimeSpan.MaxValue, fresh.WaitBucketUpperBounds.Last(), "the last bucket has no bound");
                    Assert.True(!fresh.Shared && !fresh.BreakerOpen && fresh.StoreOperations == 0, "no store");

                    for (int i = 0; i < 60; i++) l.Acquire(T).Permit.Dispose();
                    Assert.True(!l.Acquire(T).Granted, "the 61st is refused");
                    l.Peek(T); // not a decision
                    l.Observe(T, Raw("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nX-Rate-Limit-Problem: day\r\n\r\n"));
                    l.Observe("other", Raw("HTTP/1.1 200 OK\r\n\r\n{}"));
                    LimiterStatistics s = l.GetStatistics();
                    Assert.Equal(60L, s.Granted, "granted");
                    Assert.Equal(1L, s.Refused[Reason.Minute], "refused for the minute");
                    Assert.Equal(1L, s.RefusedTotal, "refusals");
                    Assert.Equal(1L, s.Responses[Category.RateLimited], "429s by category");
                    Assert.Equal(1L, s.Responses[Category.Success], "successes");
                    Assert.Equal(1L, s.RateLimited[RateLimitProblem.Day], "429s by problem");
                    Assert.Equal(0L, s.Fallbacks.Values.Sum(), "no fallbacks without a store");
                }
            });

            r.Run("stats/an_async_wait_is_counted_once_and_told", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                {
                    var events = new List<LimiterWaitEventArgs>();
                    l.WaitStarted += (sender, e) => { lock (events) events.Add(e); };
                    l.WaitEnded += (sender, e) => { lock (events) events.Add(e); };
                    FillMinute(l);
                    Task<Permit> wait = l.AcquireAsync(T, TimeSpan.FromMinutes(2));
                    WaitUntil(() => l.GetStatistics().WaitsStarted == 1, "the wait began");
                    l.Advance(30000);
                    l.Advance(30000);
                    Assert.True(wait.Wait(10000), "granted once the minute passed");
                    wait.Result.Dispose();
                    LimiterStatistics s = l.GetStatistics();
                    Assert.True(s.WaitsStarted == 1 && s.WaitsGranted == 1 && s.WaitsEnded == 1, "one wait, granted");
                    Assert.Equal(TimeSpan.FromMinutes(1), s.WaitTimeTotal, "its length");
                    Assert.Equal(1L, s.WaitBuckets[4], "in the <= 65 s bucket");
                    Assert.True(s.Granted == 1 && s.Refused[Reason.Minute] == 1, "its first refusal and its grant: " + s.RefusedTotal);
                    lock (events)
                    {
                        Assert.Equal(2, events.Count, "started and ended");
                        Assert.True(events[0].Outcome == null && events[0].TenantId == T && events[0].Reason == Reason.Minute &&
                            events[0].RefusalWait == TimeSpan.FromMinutes(1), "started, for the minute");
                        Assert.True(events[1].Outcome == WaitOutcome.Granted && events[1].Waited == TimeSpan.FromMinutes(1) &&
                            events[1].Reason == Reason.Minute, "ended granted after a minute: " + events[1].Waited);
                    }
                }
            });

            r.Run("stats/blocking_waits_give_up_are_interrupted_or_abandoned", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                {
                    var ended = new List<LimiterWaitEventArgs>();
                    l.WaitEnded += (sender, e) => { lock (ended) ended.Add(e); };
                    FillMinute(l);
                    Assert.True(!l.AcquireWait(T, 1000).Granted, "the minute frees in 60 s: given up at once");
                    Assert.True(ended.Count == 1 && ended[0].Outcome == WaitOutcome.GaveUp && ended[0].Waited == TimeSpan.Zero,
                        "told: gave up, at once");

                    using (var cancel = new CancellationTokenSource())
                    {
                        Exception caught = null;
                        var waiter = new Thread(() =>
                        {
                            try { l.AcquireWait(T, Timeout.InfiniteTimeSpan, cancel.Token); }
                            catch (Exception e) { caught = e; }
                        });
                        waiter.Start();
                        WaitUntil(() => l.GetStatistics().WaitsStarted == 2, "the second wait began");
                        l.Advance(1500);
                        cancel.Cancel();
                        Assert.True(waiter.Join(10000), "the cancelled wait returned");
                        Assert.True(caught is OperationCanceledException, "cancelled: " + caught);
                    }
                    LimiterStatistics s = l.GetStatistics();
                    Assert.True(s.WaitsStarted == 2 && s.WaitsEnded == 1, "a wait its caller abandons never ends in the library");
                    Assert.True(ended.Count == 2 && ended[1].Outcome == WaitOutcome.Abandoned && ended[1].Waited == TimeSpan.FromMilliseconds(1500),
                        "told: abandoned after 1.5 s");

                    Exception interrupted = null;
                    var blocked = new Thread(() =>
                    {
                        try { l.AcquireWait(T, Timeout.InfiniteTimeSpan); }
                        catch (Exception e) { interrupted = e; }
                    });
                    blocked.Start();
                    WaitUntil(() => l.GetStatistics().WaitsStarted == 3, "the third wait began");
                    l.Advance(2500);
                    l.Interrupt();
                    Assert.True(blocked.Join(10000), "the interrupted wait returned");
                    Assert.True(interrupted is LimiterInterruptedException, "interrupted: " + interrupted);
                    s = l.GetStatistics();
                    Assert.True(s.WaitsInterrupted == 1 && s.WaitsGivenUp == 1 && s.WaitsGranted == 0, "ended by the interrupt");
                    Assert.Equal(TimeSpan.FromMilliseconds(2500), s.WaitTimeTotal, "the ended waits' lengths");
                    Assert.True(ended.Count == 3 && ended[2].Outcome == WaitOutcome.Interrupted && ended[2].Waited == TimeSpan.FromMilliseconds(2500),
                        "told: interrupted after 2.5 s");
                }
            });

            r.Run("stats/an_outage_is_told_once_then_counted", () =>
            {
                using (var server = new OwnRedisServer())
                {
                    var options = new RedisOptions(server.Url)
                    {
                        KeyPrefix = RedisTests.Prefix("outage"),
                        OnStoreError = FailurePolicy.Open,
                        Deadline = TimeSpan.FromMilliseconds(200),
                        BreakerCooldown = TimeSpan.FromMilliseconds(50),
                    };
                    using (var l = new Limiter(Exact60(), options))
                    {
                        var told = new List<StoreOutageEventArgs>();
                        l.StoreOutage += (s, e) => told.Add(e);
                        l.Acquire(T).Permit.Dispose();
                        Assert.Equal(0, told.Count, "the store decides: nothing to tell");
                        server.Kill();
                        for (int i = 0; i < 5; i++)
                        {
                            Decision d = l.Acquire(T);
                            Assert.Equal<FailurePolicy?>(FailurePolicy.Open, d.Fallback, "the open policy decides");
                            d.Permit.Dispose();
                        }
                        Assert.Equal(1, told.Count, "told once");
                        Assert.True(told[0].State == StoreOutageState.Began && told[0].Policy == FailurePolicy.Open, "began");
                        server.Restart();
                        WaitUntil(() =>
                        {
                            Decision d = l.Acquire(T);
                            if (d.Granted) d.Permit.Dispose();
                            return d.Fallback == null;
                        }, "the store decides again (after the breaker's cooldown)");
                        Assert.Equal(2, told.Count, "told when it ended");
                        long fallbacks = l.GetStatistics().Fallbacks[FailurePolicy.Open];
                        Assert.True(told[1].State == StoreOutageState.Ended && told[1].Decisions == fallbacks && fallbacks >= 5,
                            "ended, with the decisions the policy made: " + told[1].Decisions + " of " + fallbacks);
                    }
                }
            });
        }
    }
}
