using System;
using System.Text.RegularExpressions;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace XeroGuard.Tests
{
    internal static class LimiterTests
    {
        private static KeyValuePair<string, string> H(string name, string value)
        {
            return new KeyValuePair<string, string>(name, value);
        }

        // 60 per 60 s with no margin and no concurrency cap, so waits are exact round numbers.
        private static Limits Exact60()
        {
            return new Limits { TenantMinute = new WindowLimit(60, 60000, 0), TenantConcurrency = 0 };
        }

        private static void Fill(Limiter l, string tenant, int n)
        {
            for (int i = 0; i < n; i++)
            {
                Decision d = l.Acquire(tenant);
                Assert.True(d.Granted, "call " + (i + 1) + " granted");
                d.Permit.Dispose();
            }
        }

        public static void Register(Runner r)
        {
            r.Run("limiter/60_granted_then_refused_with_exact_wait", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                {
                    Assert.Equal(LimiterClock.Manual, l.Clock, "clock");
                    Fill(l, "acme", 60);
                    Decision refused = l.Acquire("acme");
                    Assert.True(!refused.Granted && refused.Permit == null, "61st refused");
                    Assert.Equal<Reason?>(Reason.Minute, refused.Reason, "reason");
                    Assert.Equal(60000L, refused.WaitMs, "wait until the first call leaves the window");
                    l.Advance(59999);
                    Assert.Equal(59999L, l.Now, "manual clock moved");
                    Decision almost = l.Peek("acme");
                    Assert.True(!almost.Granted && almost.WaitMs == 1, "refused 1 ms before: " + almost);
                    l.Advance(TimeSpan.FromMilliseconds(1));
                    Decision granted = l.Acquire("acme");
                    Assert.True(granted.Granted && granted.Reason == null && granted.WaitMs == 0, "granted exactly at the wait");
                    granted.Permit.Dispose();
                    Assert.True(l.Acquire("other").Granted, "another tenant has its own window");
                }
            });

            r.Run("limiter/peek_takes_nothing", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                {
                    Fill(l, "t", 59);
                    for (int i = 0; i < 5; i++)
                    {
                        Decision p = l.Peek("t");
                        Assert.True(p.Granted && p.Permit == null, "peek answers granted without a permit");
                    }
                    Assert.Equal(59L, l.Snapshot("t").Minute.Count, "peeks were not counted");
                    Fill(l, "t", 1);
                    Decision after = l.Peek("t");
                    Assert.True(!after.Granted && after.Reason == Reason.Minute, "peek sees the full window");
                }
            });

            r.Run("limiter/record_counts_calls", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                {
                    for (int i = 0; i < 65; i++) l.Record("t");
                    LimiterSnapshot s = l.Snapshot("t");
                    // The library keeps only the newest `limit` past calls, so the count saturates there.
                    Assert.True(s.Minute.Count >= 60, "recorded calls count even over the limit: " + s.Minute.Count);
                    Assert.Equal(0L, s.Minute.Remaining, "none remaining");
                    Assert.Equal<Reason?>(Reason.Minute, s.WaitReason, "snapshot says why");
                    Assert.Equal(60000L, s.WaitMs, "snapshot says how long");
                    Decision d = l.Acquire("t");
                    Assert.True(!d.Granted && d.WaitMs == 60000, "acquire refused: " + d);
                }
            });

            r.Run("limiter/reserve_and_cancel", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                {
                    l.SetNow(1000);
                    Fill(l, "t", 60);
                    Reservation first = l.Reserve("t");
                    Assert.Equal(61000L, first.AtMs, "booked when the first call leaves the window");
                    Assert.Equal(60000L, first.WaitMs, "wait from now");
                    var more = Enumerable.Range(0, 59).Select(_ => l.Reserve("t")).ToList();
                    Assert.True(more.All(x => x.AtMs == 61000 && x.Id != first.Id), "59 more fit in the same instant");
                    Reservation late = l.Reserve("t");
                    Assert.Equal(121000L, late.AtMs, "the 61st booking waits a whole window more");
                    Assert.Equal(61L, l.Snapshot("t").Minute.Booked, "61 booked");
                    l.Cancel(first);
                    Assert.Equal(60L, l.Snapshot("t").Minute.Booked, "one fewer after cancel");
                    Assert.Equal(61000L, l.Reserve("t").AtMs, "the cancelled slot is free again");
                    var e = Assert.Throws<UnknownReservationException>(() => l.Cancel(first), "cancel twice");
                    Assert.Equal(8, e.Status, "status");
                    Assert.True(e.Message.Contains("xg_limiter_cancel"), "message: " + e.Message);
                    Assert.Equal(1000L, l.Now, "SetNow");
                    Assert.Throws<InvalidArgumentException>(() => l.SetNow(999), "the clock cannot move backwards");
                }
            });

            r.Run("limiter/observe_429_blocks_tenant", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                {
                    var c = Classifier.Classify(429, new[] { H("X-Rate-Limit-Problem", "minute"), H("Retry-After", "30") }, null);
                    l.Observe("acme", c);
                    Decision d = l.Acquire("acme");
                    Assert.True(!d.Granted, "blocked after a 429");
                    Assert.Equal(30000L, d.WaitMs, "for Retry-After");
                    Assert.Equal<Reason?>(Reason.RetryAfter, d.Reason, "reason");
                    LimiterSnapshot s = l.Snapshot("acme");
                    Assert.Equal<long?>(30000L, s.BlockedUntilMs, "blocked until");
                    Assert.Equal<Reason?>(Reason.RetryAfter, s.BlockReason, "block reason");
                    Assert.True(l.Acquire("other").Granted, "other tenants are not blocked");
                    l.Advance(30000);
                    Assert.True(l.Acquire("acme").Granted, "granted once the block ends");
                }
            });

            r.Run("limiter/observe_raw_and_app_block", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                {
                    byte[] raw = System.Text.Encoding.ASCII.GetBytes("HTTP/1.1 429 Too Many Requests\r\nX-Rate-Limit-Problem: appminute\r\nRetry-After: 5\r\n\r\n");
                    l.Observe("acme", raw);
                    foreach (string t in new[] { "acme", "other", Limiter.Tenantless })
                    {
                        Decision d = l.Peek(t);
                        Assert.True(!d.Granted && d.WaitMs == 5000, "the app limit blocks every caller: " + (t ?? "tenantless") + " " + d);
                    }
                    Assert.True(l.Snapshot("other").AppBlockedUntilMs == 5000L, "app block in the snapshot");
                    Assert.Throws<MalformedResponseException>(() => l.Observe("acme", new byte[] { 1, 2, 3 }), "garbage raw response");
                }
            });

            r.Run("limiter/observe_remaining_headers_raise_usage", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                {
                    var c = Classifier.Classify(200, new[] { H("X-MinLimit-Remaining", "2") }, null);
                    l.Observe("acme", c);
                    Fill(l, "acme", 2);
                    Assert.True(!l.Acquire("acme").Granted, "the server's count was taken in");
                }
            });

            r.Run("limiter/concurrency_permits", () =>
            {
                var limits = Exact60();
                limits.TenantConcurrency = 2;
                using (var l = new Limiter(limits, LimiterClock.Manual))
                {
                    Permit a = l.Acquire("t").Permit, b = l.Acquire("t").Permit;
                    Decision third = l.Acquire("t");
                    Assert.True(!third.Granted && third.Reason == Reason.Concurrency, "third in flight refused: " + third);
                    Assert.Equal(2L, l.Snapshot("t").InFlight, "two in flight");
                    l.Release(a);
                    Assert.True(a.IsReleased, "released");
                    var e = Assert.Throws<UnknownPermitException>(() => l.Release(a), "release twice");
                    Assert.Equal("unknown_permit", e.StatusName, "status name");
                    a.Dispose(); // already released: quietly nothing
                    Permit c = l.Acquire("t").Permit;
                    Assert.True(c != null, "a slot came back");
                    b.Dispose();
                    b.Dispose();
                    c.Dispose();
                    Assert.Equal(0L, l.Snapshot("t").InFlight, "all back");
                    Decision tenantless = l.Acquire(Limiter.Tenantless);
                    Assert.True(tenantless.Granted && tenantless.Permit.Id == 0, "tenantless calls hold no slot");
                    tenantless.Permit.Dispose();
                    // A null id is a bug (a missing header), not a tenantless call: refused in every method, nothing counted.
                    long before = l.Snapshot(Limiter.Tenantless).AppMinute.Count;
                    var missing = Assert.Throws<ArgumentNullException>(() => l.Acquire(null), "Acquire(null)");
                    Assert.Equal("tenantId", missing.ParamName, "the parameter named");
                    Assert.True(missing.Message.Contains("Limiter.Tenantless"), "says how to make a tenantless call: " + missing.Message);
                    Assert.Throws<ArgumentNullException>(() => l.Peek(null), "Peek(null)");
                    Assert.Throws<ArgumentNullException>(() => l.Record(null), "Record(null)");
                    Assert.Throws<ArgumentNullException>(() => l.Reserve(null), "Reserve(null)");
                    Assert.Throws<ArgumentNullException>(() => l.AcquireWait(null, 10), "AcquireWait(null)");
                    Assert.Throws<ArgumentNullException>(() => l.Snapshot(null), "Snapshot(null)");
                    Assert.Equal(before, l.Snapshot(Limiter.Tenantless).AppMinute.Count, "nothing counted");
                }
            });

            r.Run("limiter/tenant_limits_and_text", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                {
                    l.SetTenantLimits("starter", new TenantLimits(60, 3, 5));
                    Fill(l, "starter", 3);
                    Decision d = l.Acquire("starter");
                    Assert.True(!d.Granted && d.Reason == Reason.Day, "the tenant's own day limit: " + d);
                    l.SetTenantLimits("starter", null);
                    Assert.True(l.Acquire("starter").Granted, "cleared");
                    Assert.True(l.Acquire("Zürich Ünïcode 東京").Granted, "non-ASCII tenant ids");
                    Assert.Throws<TooLargeException>(() => l.Acquire(new string('x', 300)), "tenant id over 256 bytes");
                    Assert.Throws<ArgumentException>(() => l.Acquire("bad\ud800"), "lone surrogate");
                    Assert.Throws<InvalidArgumentException>(() => l.SetTenantLimits(Limiter.Tenantless, new TenantLimits(1, 1, 1)), "tenantless has no limits");
                }
            });

            r.Run("limiter/clock_rules_and_bad_limits", () =>
            {
                using (var l = new Limiter(Exact60()))
                {
                    Assert.Equal(LimiterClock.Monotonic, l.Clock, "default clock");
                    var e = Assert.Throws<WrongClockException>(() => l.Advance(10), "advance needs a manual clock");
                    Assert.True(e.Message.Contains("xg_limiter_advance_ms"), "message: " + e.Message);
                    long a = l.Now;
                    Thread.Sleep(20);
                    Assert.True(l.Now >= a + 15, "the monotonic clock runs");
                }
                var bad = new Limits { TenantMinute = new WindowLimit(60, 0, 0) };
                Assert.Throws<InvalidArgumentException>(() => new Limiter(bad), "a zero-length window is refused by the library");
                Assert.Throws<ArgumentOutOfRangeException>(() => new WindowLimit(-1, 1000, 0), "negative limit");
            });

            r.Run("limiter/dispose_semantics", () =>
            {
                var l = new Limiter(Exact60(), LimiterClock.Manual);
                Permit held = l.Acquire("t").Permit;
                Fill(l, "t", 59);
                Task<Permit> pending = l.AcquireAsync("t");
                Thread.Sleep(30);
                Assert.True(!pending.IsCompleted, "waiting for the window");
                l.Dispose();
                Assert.True(l.IsDisposed, "disposed");
                l.Dispose(); // twice is fine
                Assert.Throws<ObjectDisposedException>(() => l.Acquire("t"), "acquire");
                Assert.Throws<ObjectDisposedException>(() => l.Peek("t"), "peek");
                Assert.Throws<ObjectDisposedException>(() => { var n = l.Now; }, "now");
                Assert.Throws<ObjectDisposedException>(() => l.Snapshot("t"), "snapshot");
                Assert.Throws<ObjectDisposedException>(() => l.Advance(1), "advance");
                Assert.Throws<ObjectDisposedException>(() => l.Record("t"), "record");
                held.Dispose(); // a permit outliving its limiter disposes quietly
                Assert.Throws<ObjectDisposedException>(() => l.Release(held), "release");
                Assert.Throws<ObjectDisposedException>(() => pending.Wait(TimeSpan.FromSeconds(5)), "a pending AcquireAsync fails");
            });

            r.Run("limiter/acquire_async_wakes_on_advance", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                {
                    Fill(l, "t", 60);
                    Task<Permit> pending = l.AcquireAsync("t", CancellationToken.None);
                    Thread.Sleep(50);
                    Assert.True(!pending.IsCompleted, "still waiting: the manual clock has not moved");
                    l.Advance(60000);
                    Assert.True(pending.Wait(TimeSpan.FromSeconds(5)), "granted soon after the clock moved");
                    Assert.True(pending.Result.Id != 0, "a real permit");
                    pending.Result.Dispose();
                }
            });

            r.Run("limiter/acquire_async_cancellation", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                using (var cts = new CancellationTokenSource())
                {
                    Fill(l, "t", 60);
                    Task<Permit> pending = l.AcquireAsync("t", cts.Token);
                    Thread.Sleep(100);
                    Assert.True(!pending.IsCompleted, "waiting: the manual clock has not moved");
                    var sw = Stopwatch.StartNew();
                    cts.Cancel();
                    Assert.True(((IAsyncResult)pending).AsyncWaitHandle.WaitOne(1000), "ended within 1 s of the cancellation: " + sw.ElapsedMilliseconds + " ms");
                    Assert.True(pending.IsCanceled, "as a cancelled task: " + pending.Status);
                    var e = Assert.Throws<OperationCanceledException>(() => pending.GetAwaiter().GetResult(), "await throws");
                    Assert.True(!(e is LimiterInterruptedException), "the token's cancellation, not an interrupt");
                    Assert.Equal(60L, l.Snapshot("t").Minute.Count, "nothing was taken");
                }
            });

            r.Run("limiter/interrupt_ends_every_wait", () =>
            {
                var limits = Exact60();
                limits.TenantConcurrency = 1;
                var l = new Limiter(limits);
                Permit held = l.Acquire("busy").Permit;
                Fill(l, "full", 60);
                Exception syncEnded = null;
                var waiter = new Thread(() =>
                {
                    try { l.AcquireWait("busy", Timeout.InfiniteTimeSpan); }
                    catch (Exception e) { syncEnded = e; }
                });
                waiter.Start();
                Task<Permit> pending = l.AcquireAsync("full", Timeout.InfiniteTimeSpan);
                Thread.Sleep(100);
                Assert.True(waiter.IsAlive && !pending.IsCompleted, "both waiting");

                l.Interrupt();
                Assert.True(waiter.Join(1000), "the blocked thread returned");
                var interrupted = syncEnded as LimiterInterruptedException;
                Assert.True(interrupted != null, "with LimiterInterruptedException: " + syncEnded);
                Assert.Equal("interrupted", interrupted.StatusName, "status name");
                Assert.True(((IAsyncResult)pending).AsyncWaitHandle.WaitOne(1000), "the pending task ended");
                Assert.Throws<LimiterInterruptedException>(() => pending.GetAwaiter().GetResult(), "awaiting it throws the same kind");
                Assert.Throws<LimiterInterruptedException>(() => l.AcquireWait("other", TimeSpan.FromSeconds(1)), "later waits too");
                Assert.Throws<LimiterInterruptedException>(() => l.AcquireAsync("other").GetAwaiter().GetResult(), "later async waits too");

                Decision d = l.Acquire("other");
                Assert.True(d.Granted, "every other call keeps working");
                d.Permit.Dispose();
                held.Dispose();
                Assert.Equal(0L, l.Snapshot("busy").InFlight, "released");
                l.Dispose(); // the shutdown order: interrupt, the waiters have ended, dispose
                Assert.True(l.IsDisposed, "disposed");
            });

            r.Run("limiter/waits_give_up_at_once_beyond_the_timeout", () =>
            {
                var limits = Exact60();
                limits.TenantDay = new WindowLimit(3, 86400000, 0);
                using (var l = new Limiter(limits))
                {
                    Fill(l, "t", 3);
                    var sw = Stopwatch.StartNew();
                    var e = Assert.Throws<RateLimitWaitTooLongException>(
                        () => l.AcquireAsync("t", TimeSpan.FromMinutes(5), CancellationToken.None).Wait(), "too long a wait");
                    Assert.Equal<Reason?>(Reason.Day, e.Reason, "reason");
                    Assert.True(e.Wait > TimeSpan.FromHours(23) && e.TenantId == "t", "the wait: " + e.Wait);
                    // In the library's words (xg_refusal_words): the limit named, hours and minutes, not milliseconds.
                    Assert.True(Regex.IsMatch(e.Message, @"^no permit for tenant 't' within 5 min: day limit: next call in 2\d h( \d+ min)?$"),
                        "the message: " + e.Message);
                    Decision d = l.AcquireWait("t", TimeSpan.FromMinutes(5));
                    Assert.True(!d.Granted && d.Reason == Reason.Day && d.Wait > TimeSpan.FromHours(23), "the sync wait answers the refusal: " + d);
                    Assert.True(sw.ElapsedMilliseconds < 2000, "both at once, not after waiting: " + sw.ElapsedMilliseconds + " ms");
                    Assert.Equal(3L, l.Snapshot("t").Day.Count, "nothing was taken");
                }
            });

            r.Run("limiter/wait_timeouts_are_on_the_limiter_clock", () =>
            {
                // A concurrency wait is not given up early (a release may come sooner), so it lasts until the timeout.
                var limits = Exact60();
                limits.TenantConcurrency = 1;
                limits.PermitTimeoutMs = 600000;
                using (var l = new Limiter(limits, LimiterClock.Manual))
                {
                    Permit held = l.Acquire("t").Permit;
                    Decision got = null;
                    var waiter = new Thread(() => got = l.AcquireWait("t", TimeSpan.FromSeconds(30)));
                    waiter.Start();
                    Task<Permit> pending = l.AcquireAsync("t", TimeSpan.FromSeconds(30));
                    Thread.Sleep(100);
                    Assert.True(waiter.IsAlive && !pending.IsCompleted, "both wait: no time has passed on the manual clock");
                    l.Advance(30000);
                    Assert.True(waiter.Join(5000), "the sync wait ended when its timeout passed on the manual clock");
                    Assert.True(!got.Granted && got.Reason == Reason.Concurrency && got.WaitMs == 570000, "the last refusal: " + got);
                    var e = Assert.Throws<RateLimitWaitTooLongException>(() => pending.Wait(TimeSpan.FromSeconds(5)), "the async wait too");
                    Assert.Equal<Reason?>(Reason.Concurrency, e.Reason, "reason");
                    Assert.Throws<ArgumentOutOfRangeException>(() => l.AcquireWait("t", TimeSpan.FromMilliseconds(-5)), "negative timeout");
                    held.Dispose();
                }
            });

            r.Run("limiter/sync_wait_cancelled_by_token", () =>
            {
                using (var l = new Limiter(Exact60(), LimiterClock.Manual))
                using (var cts = new CancellationTokenSource())
                {
                    Fill(l, "t", 60);
                    Exception ended = null;
                    var waiter = new Thread(() =>
                    {
                        try { l.AcquireWait("t", Timeout.InfiniteTimeSpan, cts.Token); }
                        catch (Exception e) { ended = e; }
                    });
                    waiter.Start();
                    Thread.Sleep(100);
                    Assert.True(waiter.IsAlive, "blocked: the manual clock has not moved");
                    var sw = Stopwatch.StartNew();
                    cts.Cancel();
                    Assert.True(waiter.Join(1000), "returned within 1 s of the cancellation: " + sw.ElapsedMilliseconds + " ms");
                    Assert.True(ended is OperationCanceledException && !(ended is LimiterInterruptedException), "through OperationCanceledException: " + ended);
                    Assert.Equal(60L, l.Snapshot("t").Minute.Count, "nothing was taken");
                    Assert.Throws<OperationCanceledException>(() => l.AcquireWait("t", TimeSpan.FromSeconds(1), cts.Token), "a cancelled token ends it before it starts");
                }
            });

            r.Run("limiter/acquire_async_wakes_on_release", () =>
            {
                var limits = Exact60();
                limits.TenantConcurrency = 1;
                limits.PermitTimeoutMs = 600000;
                using (var l = new Limiter(limits))
                {
                    Permit held = l.Acquire("t").Permit;
                    Decision refused = l.Peek("t");
                    Assert.True(!refused.Granted && refused.Reason == Reason.Concurrency && refused.WaitMs > 500000, "waits for the permit to expire: " + refused);
                    var sw = Stopwatch.StartNew();
                    Task<Permit> pending = l.AcquireAsync("t", TimeSpan.FromSeconds(10), CancellationToken.None);
                    Thread.Sleep(50);
                    Assert.True(!pending.IsCompleted, "waiting for the slot");
                    held.Dispose();
                    Assert.True(pending.Wait(TimeSpan.FromSeconds(5)), "woken by the release");
                    Assert.True(sw.ElapsedMilliseconds < 3000, "promptly: " + sw.ElapsedMilliseconds + " ms");
                    pending.Result.Dispose();
                }
            });

            r.Run("limiter/acquire_wait_blocks_until_release", () =>
            {
                var limits = Exact60();
                limits.TenantConcurrency = 1;
                using (var l = new Limiter(limits, LimiterClock.Manual))
                {
                    Permit held = l.Acquire("t").Permit;
                    Assert.True(!l.AcquireWait("t", 0).Granted, "timeout 0 answers at once");
                    Decision got = null;
                    var waiter = new Thread(() => got = l.AcquireWait("t", 10000));
                    waiter.Start();
                    Thread.Sleep(50);
                    Assert.True(waiter.IsAlive, "blocked while the slot is held");
                    l.Release(held);
                    Assert.True(waiter.Join(5000), "woken by the release");
                    Assert.True(got != null && got.Granted, "granted");
                    got.Permit.Dispose();
                }
            });

            r.Run("limiter/threads_totals_add_up", () =>
            {
                var limits = new Limits
                {
                    TenantMinute = new WindowLimit(500, 60000, 0),
                    TenantDay = new WindowLimit(100000, 86400000, 0),
                    TenantConcurrency = 0,
                    AppMinute = new WindowLimit(10000, 60000, 0),
                };
                using (var l = new Limiter(limits, LimiterClock.Manual))
                {
                    const int threads = 8, attempts = 400;
                    var granted = new int[4];
                    var refused = new int[4];
                    var workers = Enumerable.Range(0, threads).Select(k => new Thread(() =>
                    {
                        string tenant = "tenant-" + (k % 4);
                        for (int i = 0; i < attempts; i++)
                        {
                            Decision d = l.Acquire(tenant);
                            if (d.Granted) { Interlocked.Increment(ref granted[k % 4]); d.Permit.Dispose(); }
                            else Interlocked.Increment(ref refused[k % 4]);
                        }
                    })).ToList();
                    workers.ForEach(w => w.Start());
                    workers.ForEach(w => w.Join());
                    for (int t = 0; t < 4; t++)
                    {
                        Assert.Equal(500, granted[t], "tenant-" + t + " granted exactly its limit");
                        Assert.Equal(300, refused[t], "tenant-" + t + " refused the rest");
                        Assert.Equal(500L, l.Snapshot("tenant-" + t).Minute.Count, "counted once each");
                    }
                    Assert.Equal(2000L, l.Snapshot("tenant-0").AppMinute.Count, "the app window holds every call");
                }
            });

            r.Run("limiter/tasks_respect_concurrency", () =>
            {
                var limits = new Limits { TenantConcurrency = 3 };
                using (var l = new Limiter(limits))
                {
                    int inFlight = 0, maxInFlight = 0, done = 0;
                    Func<Task> call = async () =>
                    {
                        using (await l.AcquireAsync("busy", CancellationToken.None))
                        {
                            int now = Interlocked.Increment(ref inFlight);
                            int seen;
                            while ((seen = Volatile.Read(ref maxInFlight)) < now) Interlocked.CompareExchange(ref maxInFlight, now, seen);
                            await Task.Delay(3);
                            Interlocked.Decrement(ref inFlight);
                        }
                        Interlocked.Increment(ref done);
                    };
                    Task all = Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Task.Run(call)));
                    Assert.True(all.Wait(TimeSpan.FromSeconds(30)), "all 40 calls finished");
                    Assert.Equal(40, done, "every call ran");
                    Assert.True(maxInFlight <= 3 && maxInFlight >= 2, "at most 3 in flight, and some overlap: " + maxInFlight);
                    LimiterSnapshot s = l.Snapshot("busy");
                    Assert.Equal(0L, s.InFlight, "every permit came back");
                    Assert.Equal(40L, s.Minute.Count, "40 calls counted");
                }
            });
        }
    }
}
