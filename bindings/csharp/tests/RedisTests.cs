using System;
using System.Diagnostics;
using System.IO;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Threading;

namespace XeroGuard.Tests
{
    // A redis-server this test program starts itself, in its own directory under XG_REDIS_DIR, for the tests that stop
    // the store. Its pid file there lets run-tests.sh kill it should this program die first.
    internal sealed class OwnRedisServer : IDisposable
    {
        private readonly string dir;
        private readonly string socket;
        private readonly string executable;
        private Process process;

        public OwnRedisServer()
        {
            executable = Environment.GetEnvironmentVariable("XG_REDIS_SERVER");
            string root = Environment.GetEnvironmentVariable("XG_REDIS_DIR");
            Assert.True(!string.IsNullOrEmpty(executable) && !string.IsNullOrEmpty(root) && Directory.Exists(root),
                "XG_REDIS_SERVER and XG_REDIS_DIR name redis-server and a directory for it (run-tests.sh sets them)");
            dir = Path.Combine(root, "own-" + Guid.NewGuid().ToString("N").Substring(0, 8));
            Directory.CreateDirectory(dir);
            socket = Path.Combine(dir, "redis.sock");
            Start();
            Url = "redis+unix://" + socket;
        }

        private void Start()
        {
            string root = Environment.GetEnvironmentVariable("XG_REDIS_DIR");
            var start = new ProcessStartInfo(executable, "--port 0 --unixsocket " + socket + " --save '' --appendonly no --dir " + dir)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            process = Process.Start(start);
            File.WriteAllText(Path.Combine(root, "own-" + process.Id + ".pid"), process.Id.ToString());
            process.OutputDataReceived += (s, e) => { };
            process.ErrorDataReceived += (s, e) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var waited = Stopwatch.StartNew();
            while (!File.Exists(socket) && !process.HasExited && waited.ElapsedMilliseconds < 10000) Thread.Sleep(20);
            Assert.True(File.Exists(socket), "redis-server started (its socket " + socket + ")");
        }

        // Kills the store and starts it again on the same socket, empty (no persistence).
        public void Restart()
        {
            Dispose(false);
            Start();
        }

        public string Url { get; private set; }

        // Stops the store answering (SIGSTOP: connections stay open, nothing comes back), until Resume.
        public void Pause() { Signal("-STOP"); }

        public void Resume() { Signal("-CONT"); }

        private void Signal(string signal)
        {
            using (Process kill = Process.Start(new ProcessStartInfo("kill", signal + " " + process.Id) { UseShellExecute = false }))
            {
                kill.WaitForExit(10000);
                Assert.Equal(0, kill.ExitCode, "kill " + signal);
            }
        }

        // Stops the store for good (SIGKILL: no goodbye to the clients).
        public void Kill()
        {
            if (!process.HasExited) process.Kill();
            process.WaitForExit(10000);
        }

        public void Dispose()
        {
            Dispose(true);
        }

        private void Dispose(bool removeDir)
        {
            Kill();
            string root = Environment.GetEnvironmentVariable("XG_REDIS_DIR");
            File.Delete(Path.Combine(root, "own-" + process.Id + ".pid"));
            process.Dispose();
            if (File.Exists(socket)) File.Delete(socket);
            if (removeDir)
            {
                try { Directory.Delete(dir, true); } catch (IOException) { }
            }
        }
    }

    // The shared limiter: run-tests.sh starts a redis-server on a unix socket and names it in XG_REDIS_URL.
    internal static class RedisTests
    {
        internal static string Url
        {
            get
            {
                string url = Environment.GetEnvironmentVariable("XG_REDIS_URL");
                Assert.True(!string.IsNullOrEmpty(url), "XG_REDIS_URL names the test's redis-server (run-tests.sh starts it)");
                return url;
            }
        }

        // A fresh prefix per test: windows and limits live under it.
        internal static string Prefix(string what)
        {
            return "xg-cs-" + what + "-" + Guid.NewGuid().ToString("N").Substring(0, 12);
        }

        private static Limits Exact60()
        {
            return new Limits { TenantMinute = new WindowLimit(60, 60000, 0), TenantConcurrency = 0 };
        }

        public static void Register(Runner r)
        {
            r.Run("redis/two_limiters_share_a_tenant_minute_exactly", () =>
            {
                string prefix = Prefix("share");
                using (var a = new Limiter(Exact60(), new RedisOptions(Url) { KeyPrefix = prefix }, LimiterClock.Manual))
                using (var b = new Limiter(Exact60(), new RedisOptions(Url) { KeyPrefix = prefix }, LimiterClock.Manual))
                {
                    int granted = 0;
                    Decision last = null;
                    for (int i = 0; i < 70; i++)
                    {
                        last = (i % 2 == 0 ? a : b).Acquire("acme");
                        if (!last.Granted) continue;
                        granted++;
                        Assert.Equal<FailurePolicy?>(null, last.Fallback, "the store decided");
                        last.Permit.Dispose();
                    }
                    Assert.Equal(60, granted, "60 in the minute between both limiters, not 60 each");
                    Assert.True(last.Reason == Reason.Minute && last.WaitMs == 60000 && last.Fallback == null, "the 70th waits a minute: " + last);
                    Decision fromB = b.Peek("acme");
                    Assert.True(!fromB.Granted && fromB.WaitMs == 60000, "b sees a's calls: " + fromB);
                    Assert.True(a.Acquire("other").Granted, "other tenants have their own window");

                    a.Advance(59999);
                    b.Advance(59999);
                    Assert.Equal(1L, a.Peek("acme").WaitMs, "refused 1 ms before");
                    a.Advance(1);
                    b.Advance(1);
                    Decision again = b.Acquire("acme");
                    Assert.True(again.Granted, "a minute later, granted: " + again);
                    again.Permit.Dispose();

                    LimiterSnapshot s = a.Snapshot("acme");
                    Assert.Equal(60L, s.Minute.Limit, "the snapshot reads the store");
                    Assert.Equal(0L, s.TenantsTracked, "a store-backed limiter tracks no tenants in the process");
                }
            });

            r.Run("redis/limits_that_differ_from_the_stored_ones_are_refused_unless_adopted", () =>
            {
                string prefix = Prefix("adopt");
                var five = new Limits { TenantMinute = new WindowLimit(5, 60000, 0), TenantConcurrency = 0 };
                using (var first = new Limiter(Exact60(), new RedisOptions(Url) { KeyPrefix = prefix }, LimiterClock.Manual))
                {
                    var e = Assert.Throws<LimitsDifferException>(
                        () => new Limiter(five, new RedisOptions(Url) { KeyPrefix = prefix }, LimiterClock.Manual), "differing limits");
                    Assert.Equal("limits_differ", e.StatusName, "status name");
                    Assert.True(e.Message.Contains("given 5 per 60000 ms") && e.Message.Contains("stored 60 per 60000 ms"), "names both: " + e.Message);
                    var adopt = new RedisOptions(Url) { KeyPrefix = prefix, AdoptStoredLimits = true };
                    using (var adopted = new Limiter(five, adopt, LimiterClock.Manual))
                    {
                        Assert.Equal(60, adopted.Limits.TenantMinute.Limit, "after adopting, Limits reports the stored ones");
                        Assert.Equal(60, first.Limits.TenantMinute.Limit, "the first limiter's own");
                    }
                    var both = new RedisOptions(Url) { KeyPrefix = prefix, AdoptStoredLimits = true, ReplaceLimits = true };
                    Assert.Throws<ArgumentException>(() => new Limiter(five, both, LimiterClock.Manual), "both flags");
                }
            });

            r.Run("redis/inspect_reads_a_prefix_and_writes_nothing", () =>
            {
                string prefix = Prefix("inspect");
                var five = new Limits { TenantMinute = new WindowLimit(5, 60000, 0) };
                using (var writer = new Limiter(five, new RedisOptions(Url) { KeyPrefix = prefix }))
                {
                    writer.Acquire("t");
                    using (var reader = Limiter.Inspect(new RedisOptions(Url) { KeyPrefix = prefix, Deadline = TimeSpan.FromMilliseconds(500) }))
                    {
                        Assert.Equal(5, reader.Limits.TenantMinute.Limit, "the stored limits");
                        Assert.Equal(1, reader.Snapshot("t").Minute.Count, "the writer's call");
                        Assert.True(reader.Peek("t").Granted, "peek answers");
                        var e = Assert.Throws<InvalidArgumentException>(() => reader.Acquire("t"), "acquire writes");
                        Assert.True(e.Message.Contains("only reads"), "says why: " + e.Message);
                        Assert.Throws<InvalidArgumentException>(() => reader.Record("t"), "record writes");
                        Assert.Equal(1, writer.Snapshot("t").Minute.Count, "nothing counted by the reader");
                    }
                }
                string empty = Prefix("inspect-empty");
                using (var reader = Limiter.Inspect(new RedisOptions(Url) { KeyPrefix = empty }))
                    Assert.Throws<NoStoredLimitsException>(() => reader.Snapshot("t"), "an empty prefix");
                // Nothing was stored: limits other than the defaults initialise the prefix without LimitsDiffer.
                using (var later = new Limiter(five, new RedisOptions(Url) { KeyPrefix = empty }))
                    Assert.Equal(5, later.Limits.TenantMinute.Limit, "the empty prefix stayed empty");
            });

            r.Run("redis/waits_and_interrupt_work_on_the_store", () =>
            {
                using (var l = new Limiter(Exact60(), new RedisOptions(Url) { KeyPrefix = Prefix("wait") }, LimiterClock.Manual))
                {
                    for (int i = 0; i < 60; i++) l.Acquire("t").Permit.Dispose();
                    var pending = l.AcquireAsync("t", TimeSpan.FromMinutes(2));
                    Thread.Sleep(100);
                    Assert.True(!pending.IsCompleted, "waiting for the window");
                    l.Advance(60000);
                    Assert.True(pending.Wait(5000), "granted once the manual clock moved");
                    pending.Result.Dispose();
                    for (int i = 0; i < 59; i++) l.Acquire("t").Permit.Dispose();
                    Decision d = l.AcquireWait("t", TimeSpan.FromSeconds(1));
                    Assert.True(!d.Granted && d.Reason == Reason.Minute, "a wait beyond the timeout is given up at once: " + d);
                    l.Interrupt();
                    Assert.Throws<LimiterInterruptedException>(() => l.AcquireWait("t", TimeSpan.FromMinutes(5)), "interrupted");
                }
            });

            r.Run("redis/unreachable_store_fails_creation_within_the_deadline", () =>
            {
                var options = new RedisOptions("redis://127.0.0.1:1") { KeyPrefix = Prefix("gone"), Deadline = TimeSpan.FromMilliseconds(200) };
                var sw = Stopwatch.StartNew();
                var e = Assert.Throws<StoreUnavailableException>(() => new Limiter(null, options), "nobody listens on port 1");
                Assert.True(sw.ElapsedMilliseconds < 3000, "failed within the deadline, not after retrying: " + sw.ElapsedMilliseconds + " ms");
                Assert.Equal("store_unavailable", e.StatusName, "status name");
                Assert.True(e is StoreException, "a StoreException");
            });

            r.Run("redis/options_are_checked_before_connecting", () =>
            {
                var defaults = new RedisOptions(Url);
                Assert.Equal(TimeSpan.FromMilliseconds(250), defaults.Deadline, "the library's default deadline");
                Assert.Equal(TimeSpan.FromSeconds(1), defaults.BreakerCooldown, "the library's default cooldown");
                Assert.Equal(FailurePolicy.Closed, defaults.OnStoreError, "closed by default");
                Assert.True(defaults.Workers == 1 && !defaults.ReplaceLimits && !defaults.AdoptStoredLimits && defaults.TlsCaFile == null,
                    "workers 1, differing limits refused, system CAs");

                Assert.Throws<ArgumentException>(() => new RedisOptions(" "), "no URL");
                Assert.Throws<ArgumentException>(() => new Limiter(null, new RedisOptions(Url)), "no key prefix");
                Assert.Throws<ArgumentNullException>(() => new Limiter(null, (RedisOptions)null), "no options");
                Assert.Throws<ArgumentException>(() => new RedisOptions(Url) { KeyPrefix = "" }, "empty prefix");
                Assert.Throws<ArgumentOutOfRangeException>(() => new RedisOptions(Url) { Deadline = TimeSpan.Zero }, "zero deadline");
                Assert.Throws<ArgumentOutOfRangeException>(() => new RedisOptions(Url) { BreakerCooldown = TimeSpan.FromSeconds(-1) }, "negative cooldown");
                Assert.Throws<ArgumentOutOfRangeException>(() => new RedisOptions(Url) { Workers = 0 }, "no workers");
                Assert.Throws<ArgumentOutOfRangeException>(() => new RedisOptions(Url) { OnStoreError = (FailurePolicy)9 }, "no such policy");
                Assert.Throws<ArgumentException>(() => new RedisOptions(Url) { TlsCaFile = "" }, "blank CA file");
                // What only the library knows (the longest deadline, the URL forms) is an ArgumentException from it, still
                // before anything is connected: nobody listens on port 1, yet the answer is not "unavailable".
                var tooLong = new RedisOptions("redis://127.0.0.1:1") { KeyPrefix = "p", Deadline = TimeSpan.FromSeconds(11) };
                var e = Assert.Throws<InvalidArgumentException>(() => new Limiter(null, tooLong), "an 11 s deadline");
                Assert.True(e.Message.Contains("deadline"), "the library says why: " + e.Message);
                Assert.Throws<InvalidArgumentException>(() => new Limiter(null, new RedisOptions("nonsense://x") { KeyPrefix = "p" }), "a URL scheme");
                Assert.True(!new RedisOptions("redis://user:secret@host:6379") { KeyPrefix = "p" }.ToString().Contains("secret"), "no password in ToString");
            });

            r.Run("redis/a_write_the_server_carried_out_reaches_the_caller_when_the_store_stalls", () =>
            {
                // The request is at the server when Redis stops answering; the server creates the invoice (200). The
                // limiter cannot observe or release within its deadline, but the response exists: it is returned, not
                // thrown away for a StoreUnavailableException (code retrying on exceptions would create it twice).
                using (var store = new OwnRedisServer())
                using (var limiter = new Limiter(Exact60(), new RedisOptions(store.Url)
                    { KeyPrefix = Prefix("stall"), Deadline = TimeSpan.FromMilliseconds(100) }))
                using (var web = new LoopbackServer((n, req) => { store.Pause(); return LoopbackServer.Reply.With(200); }))
                {
                    var handler = new XeroGuardHandler(limiter);
                    var problems = new List<StoreErrorEventArgs>();
                    handler.StoreError += (sender, e) => problems.Add(e);
                    using (var client = new HttpClient(handler))
                    {
                        var request = new HttpRequestMessage(HttpMethod.Put, web.Url + "/api.xro/2.0/Invoices")
                        {
                            Content = new StringContent("{\"Invoices\":[]}", System.Text.Encoding.UTF8, "application/json"),
                        };
                        request.Headers.Add("Xero-Tenant-Id", "acme");
                        HttpResponseMessage response;
                        try
                        {
                            response = client.SendAsync(request).GetAwaiter().GetResult();
                        }
                        finally
                        {
                            store.Resume();
                        }
                        Assert.Equal(HttpStatusCode.OK, response.StatusCode, "the response reached the caller");
                        Assert.Equal(1, web.Requests.Count, "sent once");
                        Assert.True(problems.Count > 0 && problems.All(p => (p.Operation == "observe" || p.Operation == "release")
                            && p.Exception is StoreException && p.TenantId == "acme"), "reported, not thrown: " + problems.Count);
                    }
                }
            });

            r.Run("redis/failure_policies_decide_while_the_store_is_gone", () =>
            {
                using (var server = new OwnRedisServer())
                {
                    Func<FailurePolicy, Limiter> open = policy => new Limiter(Exact60(), new RedisOptions(server.Url)
                    {
                        KeyPrefix = Prefix("policy-" + Vocabulary.Name(policy)),
                        OnStoreError = policy,
                        Workers = 4,
                        Deadline = TimeSpan.FromMilliseconds(200),
                    }, LimiterClock.Manual);
                    using (Limiter closed = open(FailurePolicy.Closed))
                    using (Limiter open_ = open(FailurePolicy.Open))
                    using (Limiter local = open(FailurePolicy.Local))
                    {
                        Decision before = closed.Acquire("t");
                        Assert.True(before.Granted && before.Fallback == null, "the store decides while it is up");
                        before.Permit.Dispose();

                        server.Kill();
                        Decision refused = closed.Acquire("t");
                        Assert.True(!refused.Granted && refused.Reason == Reason.StoreUnavailable, "closed refuses: " + refused);
                        Assert.Equal<FailurePolicy?>(FailurePolicy.Closed, refused.Fallback, "and says the policy decided");
                        Decision blind = open_.Acquire("t");
                        Assert.True(blind.Granted && blind.Fallback == FailurePolicy.Open && blind.Permit.Fallback == FailurePolicy.Open,
                            "open grants, flagged: " + blind);
                        blind.Permit.Dispose();
                        // 60 a minute over 4 workers: this process keeps 15.
                        int granted = 0;
                        for (int i = 0; i < 20; i++)
                        {
                            Decision d = local.Acquire("t");
                            if (!d.Granted) continue;
                            Assert.Equal<FailurePolicy?>(FailurePolicy.Local, d.Fallback, "local decides");
                            granted++;
                            d.Permit.Dispose();
                        }
                        Assert.Equal(15, granted, "local keeps its share of the minute");
                        Assert.True(refused.ToString().Contains("closed"), "ToString names the policy: " + refused);
                    }
                }
            });
        }
    }
}
