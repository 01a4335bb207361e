using System;
using System.IO;
using System.Runtime.CompilerServices;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace XeroGuard
{
    /// <summary>Which clock a limiter reads.</summary>
    public enum LimiterClock
    {
        /// <summary>The system's monotonic clock, counted from the limiter's creation.</summary>
        Monotonic = 0,
        /// <summary>Starts at 0 and moves only with <see cref="Limiter.Advance(long)"/> / <see cref="Limiter.SetNow"/> (tests).</summary>
        Manual = 1,
    }

    /// <summary>The answer of acquire or peek: granted (with a permit from acquire), or refused with the exact wait and why.</summary>
    public sealed class Decision
    {
        internal Decision(bool granted, Permit permit, long waitMs, Reason? reason, FailurePolicy? fallback)
        {
            Granted = granted;
            Permit = permit;
            WaitMs = waitMs;
            Reason = reason;
            Fallback = fallback;
        }

        /// <summary>True when the call may go ahead now.</summary>
        public bool Granted { get; private set; }
        /// <summary>The permit to release when the call is done (acquire only; null for peek and refusals).</summary>
        public Permit Permit { get; private set; }
        /// <summary>How long until the call would be granted (0 when granted).</summary>
        public long WaitMs { get; private set; }
        /// <summary><see cref="WaitMs"/> as a TimeSpan.</summary>
        public TimeSpan Wait { get { return TimeSpan.FromMilliseconds(WaitMs); } }
        /// <summary>Why it was refused; null when granted.</summary>
        public Reason? Reason { get; private set; }
        /// <summary>
        /// Null when the limiter's state decided (always, for a limiter of this process alone); for a limiter sharing
        /// its state through a store (<see cref="RedisOptions"/>), the failure policy that decided because the store
        /// could not be reached: <see cref="FailurePolicy.Open"/> granted blind, <see cref="FailurePolicy.Closed"/>
        /// refused (<see cref="XeroGuard.Reason.StoreUnavailable"/>), <see cref="FailurePolicy.Local"/> decided with this
        /// process's share of the limits.
        /// </summary>
        public FailurePolicy? Fallback { get; private set; }

        /// <summary>"granted", or the wait and its reason; and the failure policy when one decided.</summary>
        public override string ToString()
        {
            string text = Granted ? "granted" : string.Format("refused: wait {0} ms ({1})", WaitMs, Vocabulary.Name(Reason.Value));
            return Fallback.HasValue ? text + " by the " + Vocabulary.Name(Fallback.Value) + " failure policy" : text;
        }
    }

    /// <summary>A granted call's concurrency slot. Dispose (or <see cref="Limiter.Release"/>) gives it back; disposing twice is harmless.</summary>
    public sealed class Permit : IDisposable
    {
        private readonly Limiter limiter;
        private int released;

        internal Permit(Limiter limiter, ulong id, string tenantId, FailurePolicy? fallback)
        {
            this.limiter = limiter;
            Id = id;
            TenantId = tenantId;
            Fallback = fallback;
        }

        /// <summary>The library's permit id (0 for tenantless calls, which hold no slot).</summary>
        public ulong Id { get; private set; }
        /// <summary>The tenant the permit was granted for (null for a tenantless call).</summary>
        public string TenantId { get; private set; }
        /// <summary>Null when the limiter's state granted it; else the failure policy that did, the shared store being out of reach (<see cref="Decision.Fallback"/>).</summary>
        public FailurePolicy? Fallback { get; private set; }
        internal Limiter Owner { get { return limiter; } }

        /// <summary>True once this permit was given back through this object.</summary>
        public bool IsReleased { get { return Volatile.Read(ref released) != 0; } }

        internal bool MarkReleased()
        {
            return Interlocked.Exchange(ref released, 1) == 0;
        }

        /// <summary>Gives the permit back (once; later calls do nothing, and nothing is thrown when it expired or the limiter is gone).</summary>
        public void Dispose()
        {
            if (MarkReleased()) limiter.ReleaseQuietly(Id);
        }
    }

    /// <summary>A booked future slot: the call counts from now on at <see cref="AtMs"/> (limiter clock), <see cref="WaitMs"/> from now.</summary>
    public sealed class Reservation
    {
        internal Reservation(ulong id, long atMs, long waitMs)
        {
            Id = id;
            AtMs = atMs;
            WaitMs = waitMs;
        }

        /// <summary>The library's reservation id, for <see cref="Limiter.Cancel"/>.</summary>
        public ulong Id { get; private set; }
        /// <summary>When the call counts, on the limiter's clock (ms).</summary>
        public long AtMs { get; private set; }
        /// <summary>How long from now until <see cref="AtMs"/>.</summary>
        public long WaitMs { get; private set; }
        /// <summary><see cref="WaitMs"/> as a TimeSpan.</summary>
        public TimeSpan Wait { get { return TimeSpan.FromMilliseconds(WaitMs); } }
    }

    /// <summary>One window's view in a <see cref="LimiterSnapshot"/>.</summary>
    [DataContract]
    public sealed class WindowSnapshot
    {
        [DataMember(Name = "limit")] private long limit = 0;
        [DataMember(Name = "window_ms")] private long windowMs = 0;
        [DataMember(Name = "count")] private long count = 0;
        [DataMember(Name = "remaining")] private long remaining = 0;
        [DataMember(Name = "booked")] private long booked = 0;

        // Made only by deserialising the library's JSON.
        internal WindowSnapshot() { }

        /// <summary>The window's limit.</summary>
        public long Limit { get { return limit; } }
        /// <summary>The window's length in milliseconds.</summary>
        public long WindowMs { get { return windowMs; } }
        /// <summary>Calls in the window ending now.</summary>
        public long Count { get { return count; } }
        /// <summary>Calls still allowed in the window ending now.</summary>
        public long Remaining { get { return remaining; } }
        /// <summary>Calls booked (reserved) for later instants.</summary>
        public long Booked { get { return booked; } }
    }

    /// <summary>A tenant's state in a limiter now (xg_limiter_snapshot_json).</summary>
    [DataContract]
    public sealed class LimiterSnapshot
    {
        [DataMember(Name = "tenant")] private string tenant = null;
        [DataMember(Name = "now_ms")] private long nowMs = 0;
        [DataMember(Name = "minute")] private WindowSnapshot minute = null;
        [DataMember(Name = "day")] private WindowSnapshot day = null;
        [DataMember(Name = "app_minute")] private WindowSnapshot appMinute = null;
        [DataMember(Name = "in_flight")] private long inFlight = 0;
        [DataMember(Name = "concurrency_limit")] private long concurrencyLimit = 0;
        [DataMember(Name = "blocked_until_ms")] private long? blockedUntilMs = null;
        [DataMember(Name = "block_reason")] private string blockReason = null;
        [DataMember(Name = "app_blocked_until_ms")] private long? appBlockedUntilMs = null;
        [DataMember(Name = "app_block_reason")] private string appBlockReason = null;
        [DataMember(Name = "wait_ms")] private long waitMs = 0;
        [DataMember(Name = "wait_reason")] private string waitReason = null;
        [DataMember(Name = "tenants_tracked")] private long tenantsTracked = 0;

        // Made only by deserialising the library's JSON.
        internal LimiterSnapshot() { }

        /// <summary>The tenant asked about.</summary>
        public string TenantId { get { return tenant; } }
        /// <summary>The limiter's clock when the snapshot was taken (ms).</summary>
        public long NowMs { get { return nowMs; } }
        /// <summary>The tenant's minute window.</summary>
        public WindowSnapshot Minute { get { return minute; } }
        /// <summary>The tenant's day window.</summary>
        public WindowSnapshot Day { get { return day; } }
        /// <summary>The app's minute window (shared by all tenants).</summary>
        public WindowSnapshot AppMinute { get { return appMinute; } }
        /// <summary>The tenant's permits not yet released.</summary>
        public long InFlight { get { return inFlight; } }
        /// <summary>The tenant's concurrency limit (0: none).</summary>
        public long ConcurrencyLimit { get { return concurrencyLimit; } }
        /// <summary>Until when the tenant is blocked by server feedback (limiter clock, ms); null when not blocked.</summary>
        public long? BlockedUntilMs { get { return blockedUntilMs; } }
        /// <summary>Why the tenant is blocked; null when not blocked.</summary>
        public Reason? BlockReason { get { return Vocabulary.ParseReason(blockReason); } }
        /// <summary>Until when every tenant is blocked (an app-wide 429, an outage); null when not blocked.</summary>
        public long? AppBlockedUntilMs { get { return appBlockedUntilMs; } }
        /// <summary>Why every tenant is blocked; null when not blocked.</summary>
        public Reason? AppBlockReason { get { return Vocabulary.ParseReason(appBlockReason); } }
        /// <summary>What acquire would answer now: 0 when it would grant.</summary>
        public long WaitMs { get { return waitMs; } }
        /// <summary>Why acquire would refuse now; null when it would grant.</summary>
        public Reason? WaitReason { get { return Vocabulary.ParseReason(waitReason); } }
        /// <summary>How many tenants the limiter is tracking (0 for a limiter whose state is in Redis).</summary>
        public long TenantsTracked { get { return tenantsTracked; } }
        /// <summary>The library's JSON form.</summary>
        public string Json { get; internal set; }

        /// <summary>The library's JSON form, as <see cref="Json"/>.</summary>
        public override string ToString()
        {
            return Json;
        }
    }

    /// <summary>
    /// Paces calls within Xero's limits: per-tenant and per-app rolling windows, concurrency permits and blocks
    /// from server feedback, all decided by the native library, in this process or shared by every process of the app
    /// through Redis (<see cref="RedisOptions"/>). Thread-safe. To shut down while calls may be waiting:
    /// <see cref="Interrupt"/>, wait for the waiting threads and tasks to end, then <see cref="Dispose"/>.
    /// Watching it: <see cref="GetStatistics"/>; the events <see cref="WaitStarted"/>, <see cref="WaitEnded"/>,
    /// <see cref="StoreOutage"/> and <see cref="BreakerChanged"/> (for a logger); on .NET 6 and later, LimiterMetrics
    /// publishes the statistics as instruments of the <c>Xeroguard</c> Meter.
    /// </summary>
    public sealed class Limiter : IDisposable
    {
        /// <summary>
        /// The tenant id of a call made without a tenant (e.g. <c>/connections</c>): it counts only against the app
        /// window. Every method taking a tenant id refuses null, so a missing id is a bug found, not a call miscounted.
        /// </summary>
        public const string Tenantless = "";

        private static readonly DataContractJsonSerializer SnapshotSerializer = new DataContractJsonSerializer(typeof(LimiterSnapshot));

        // The longest a synchronous wait blocks in one native step, so a cancelled token is seen soon after.
        private const ulong SyncStepMs = 50;

        private readonly LimiterHandle handle;
        // Completed (and replaced) whenever capacity may have been freed, so async waiters re-ask at once.
        private TaskCompletionSource<bool> wake = NewWake();
        private readonly OutageWatch outages = new OutageWatch();

        /// <summary>A wait for a permit began: its first answer was a refusal (raised on the waiting thread).</summary>
        public event EventHandler<LimiterWaitEventArgs> WaitStarted;
        /// <summary>A wait for a permit ended: granted, given up, interrupted or abandoned, with how long it lasted.</summary>
        public event EventHandler<LimiterWaitEventArgs> WaitEnded;
        /// <summary>
        /// The failure policy decides because the shared store cannot be reached: raised when that begins (log it as a
        /// warning), about once a minute while it lasts, and when the store decides again, with the decisions it made.
        /// </summary>
        public event EventHandler<StoreOutageEventArgs> StoreOutage;
        /// <summary>The store's breaker opened or closed (seen when the statistics are read, and when an outage begins or ends).</summary>
        public event EventHandler<BreakerEventArgs> BreakerChanged;

        /// <summary>A limiter of this process with <paramref name="limits"/> (null: the library's defaults) on the given clock.</summary>
        public Limiter(Limits limits = null, LimiterClock clock = LimiterClock.Monotonic)
        {
            Native.EnsureAbi();
            XgLimits l = (limits ?? new Limits()).ToNative();
            LimiterHandle h;
            Native.Ensure(NativeMethods.xg_limiter_new(ref l, (uint)clock, out h));
            handle = h;
            Clock = clock;
        }

        /// <summary>
        /// A limiter whose windows, permits, blocks and limits live in Redis, shared by every process and machine using
        /// the same <see cref="RedisOptions.KeyPrefix"/> (one prefix per Xero app): each decision is one atomic script on
        /// the store's clock. Every other member works as on a limiter of this process. <paramref name="limits"/> (null:
        /// the defaults) initialise a prefix that holds none; limits that differ from the stored ones are a
        /// <see cref="LimitsDifferException"/> unless <see cref="RedisOptions.ReplaceLimits"/> (these are stored) or
        /// <see cref="RedisOptions.AdoptStoredLimits"/> (the stored ones are used). <paramref name="clock"/>:
        /// <see cref="LimiterClock.Monotonic"/> in production (the store's clock decides); <see cref="LimiterClock.Manual"/> for tests, where the manual reading
        /// is the store's clock (a key prefix is used with one kind of clock only). It connects now:
        /// <see cref="StoreException"/> when the store refuses; when it cannot be reached within
        /// <see cref="RedisOptions.Deadline"/>, <see cref="StoreUnavailableException"/> under
        /// <see cref="FailurePolicy.Closed"/>, while under <see cref="FailurePolicy.Open"/> and
        /// <see cref="FailurePolicy.Local"/> the limiter is made and its policy decides (flagged) until the store answers.
        /// </summary>
        public Limiter(Limits limits, RedisOptions redis, LimiterClock clock = LimiterClock.Monotonic)
            : this(limits, redis, clock, false)
        {
        }

        private Limiter(Limits limits, RedisOptions redis, LimiterClock clock, bool readOnly)
        {
            if (redis == null) throw new ArgumentNullException(nameof(redis));
            redis.Validate();
            Native.EnsureAbi();
            XgLimits l = (limits ?? new Limits()).ToNative();
            handle = RedisOptions.Open(l, redis, (uint)clock, readOnly);
            Clock = clock;
        }

        /// <summary>
        /// A read-only look at the limiter shared through <see cref="RedisOptions.KeyPrefix"/> (what
        /// <c>xeroguard snapshot</c> uses): it writes nothing, not even limits to an empty prefix.
        /// <see cref="Snapshot"/> and <see cref="Peek"/> answer (<see cref="NoStoredLimitsException"/> on a prefix that
        /// holds none); every operation that would write throws <see cref="InvalidArgumentException"/> saying the
        /// limiter only reads; <see cref="Limits"/> are the stored ones (the defaults when there are none). Only the
        /// URL, prefix, deadline and CA file of <paramref name="redis"/> apply.
        /// </summary>
        public static Limiter Inspect(RedisOptions redis, LimiterClock clock = LimiterClock.Monotonic)
        {
            return new Limiter(null, redis, clock, true);
        }

        /// <summary>The clock the limiter reads.</summary>
        public LimiterClock Clock { get; private set; }

        /// <summary>
        /// The limits the limiter paces by (a copy): on a shared limiter, those stored for its prefix (after
        /// <see cref="RedisOptions.AdoptStoredLimits"/>, the stored ones rather than those given).
        /// </summary>
        public Limits Limits
        {
            [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
            get
            {
                XgLimits l = NativeMethods.xg_limits_default();
                Native.Ensure(NativeMethods.xg_limiter_limits(Handle, ref l));
                return new Limits(l);
            }
        }

        /// <summary>The limiter's clock reading in milliseconds.</summary>
        public long Now
        {
            [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
            get
            {
                ulong ms;
                Native.Ensure(NativeMethods.xg_limiter_now_ms(Handle, out ms));
                return Native.ClampToLong(ms);
            }
        }

        /// <summary>Moves a manual clock forward (<see cref="WrongClockException"/> on a monotonic one).</summary>
        public void Advance(long ms)
        {
            Native.Ensure(NativeMethods.xg_limiter_advance_ms(Handle, Native.CheckedMs(ms, "ms")));
            Signal();
        }

        /// <summary>Moves a manual clock forward by <paramref name="by"/> (whole milliseconds).</summary>
        public void Advance(TimeSpan by)
        {
            Advance((long)by.TotalMilliseconds);
        }

        /// <summary>Sets a manual clock; it cannot move backwards (<see cref="InvalidArgumentException"/>).</summary>
        public void SetNow(long nowMs)
        {
            Native.Ensure(NativeMethods.xg_limiter_set_now_ms(Handle, Native.CheckedMs(nowMs, "nowMs")));
            Signal();
        }

        /// <summary>
        /// Asks for a call now. Granted: the call is counted and <see cref="Decision.Permit"/> must be released.
        /// Refused: nothing changes. <see cref="Tenantless"/> (the empty id) is a call without a tenant (app window
        /// only); a null id throws <see cref="ArgumentNullException"/>.
        /// </summary>
        public Decision Acquire(string tenantId)
        {
            byte[] tenant = Native.Tenant(tenantId);
            var d = NewDecision();
            Native.Ensure(NativeMethods.xg_limiter_acquire(Handle, tenant, Native.Len(tenant), ref d));
            Decision decision = ToDecision(d, tenantId, true);
            Watch(decision.Fallback);
            return decision;
        }

        /// <summary>As <see cref="AcquireWait(string, TimeSpan, CancellationToken)"/> with a timeout in milliseconds.</summary>
        public Decision AcquireWait(string tenantId, long timeoutMs)
        {
            return AcquireWait(tenantId, Native.CheckedMs(timeoutMs, "timeoutMs"), CancellationToken.None);
        }

        /// <summary>
        /// Blocks the calling thread until the call is granted, or until the library gives up: the
        /// <paramref name="timeout"/> (on the limiter's clock; <see cref="Timeout.InfiniteTimeSpan"/>: none) has passed,
        /// or the wait certainly ends after it (a day limit, say), which it answers at once. Returns the decision:
        /// granted with its permit, or the last refusal. It wakes when this process frees capacity, and throws
        /// <see cref="OperationCanceledException"/> soon (within about 50 ms) after <paramref name="cancellationToken"/>
        /// is cancelled, and <see cref="LimiterInterruptedException"/> once <see cref="Interrupt"/> is called.
        /// </summary>
        public Decision AcquireWait(string tenantId, TimeSpan timeout, CancellationToken cancellationToken = default(CancellationToken))
        {
            return AcquireWait(tenantId, Native.TimeoutMs(timeout, "timeout"), cancellationToken);
        }

        private Decision AcquireWait(string tenantId, ulong timeoutMs, CancellationToken cancellationToken)
        {
            byte[] tenant = Native.Tenant(tenantId);
            ulong deadline = DeadlineMs(timeoutMs);
            // One struct through every step: the library keeps the wait's start in it, to count the wait once.
            XgWaitStep step = NewStep();
            Decision first = null; // the refusal that started the wait
            try
            {
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    // The first step does not block, so the wait's start is seen; later ones block (waking on this
                    // process's releases), and between them the token is checked.
                    Step(tenant, deadline, first == null ? 0 : SyncStepMs, ref step);
                    if (step.Outcome == NativeMethods.WaitGranted)
                    {
                        var granted = new Decision(true, new Permit(this, step.Permit, tenantId, Fallback(step.Fallback)), 0, null, Fallback(step.Fallback));
                        return Waited(tenantId, first, granted, step);
                    }
                    if (step.Outcome == NativeMethods.WaitGiveUp) return Waited(tenantId, first, Refusal(step), step);
                    if (first == null) first = WaitBegan(tenantId, step);
                }
            }
            catch (Exception e) when (first != null)
            {
                WaitBroken(tenantId, first, step, e);
                throw;
            }
        }

        private Decision WaitBegan(string tenantId, XgWaitStep step)
        {
            Decision first = Refusal(step);
            Watch(first.Fallback);
            var started = WaitStarted;
            if (started != null) started(this, new LimiterWaitEventArgs(tenantId, first, TimeSpan.Zero, null));
            return first;
        }

        // The wait's last step: its decision, told (a grant at once is no wait).
        private Decision Waited(string tenantId, Decision first, Decision last, XgWaitStep step)
        {
            Watch(last.Fallback);
            var ended = WaitEnded;
            if (ended != null && (first != null || !last.Granted))
            {
                var outcome = last.Granted ? WaitOutcome.Granted : WaitOutcome.GaveUp;
                ended(this, new LimiterWaitEventArgs(tenantId, first ?? last, Native.Duration(step.WaitedMs), outcome));
            }
            return last;
        }

        // A wait ended by an exception: Interrupt, or its caller (a cancelled token).
        private void WaitBroken(string tenantId, Decision first, XgWaitStep step, Exception error)
        {
            var ended = WaitEnded;
            if (ended == null) return;
            ulong now;
            if (handle.IsClosed || NativeMethods.xg_limiter_now_ms(handle, out now) != NativeMethods.StatusOk) return;
            var outcome = error is LimiterInterruptedException ? WaitOutcome.Interrupted : WaitOutcome.Abandoned;
            ulong waited = now > step.WaitStartedMs ? now - step.WaitStartedMs : 0;
            ended(this, new LimiterWaitEventArgs(tenantId, first, Native.Duration(waited), outcome));
        }

        // Tells of outages from a decision's Fallback: cheap when there is none and none is going on.
        private void Watch(FailurePolicy? fallback)
        {
            if (fallback == null && !outages.InOutage) return;
            StoreOutageEventArgs outage = outages.Decided(fallback);
            if (outage == null) return;
            var handler = StoreOutage;
            if (handler != null) handler(this, outage);
            if (outage.State != StoreOutageState.Continuing && !handle.IsClosed) GetStatistics(); // the breaker, with it
        }

        /// <summary>
        /// What this limiter decided, waited for and was told since it was made, and its shared store's figures
        /// (xg_limiter_stats). It takes no lock in the library: read it as often as a metrics scrape does.
        /// </summary>
        public LimiterStatistics GetStatistics()
        {
            XgStats s = NewStats();
            Native.Ensure(NativeMethods.xg_limiter_stats(Handle, ref s));
            var stats = new LimiterStatistics(s);
            BreakerEventArgs breaker = outages.Saw(stats);
            var handler = BreakerChanged;
            if (breaker != null && handler != null) handler(this, breaker);
            return stats;
        }

        /// <summary>What <see cref="Acquire"/> would answer now, taking nothing.</summary>
        public Decision Peek(string tenantId)
        {
            byte[] tenant = Native.Tenant(tenantId);
            var d = NewDecision();
            Native.Ensure(NativeMethods.xg_limiter_peek(Handle, tenant, Native.Len(tenant), ref d));
            Decision decision = ToDecision(d, tenantId, false);
            Watch(decision.Fallback);
            return decision;
        }

        /// <summary>Waits (without blocking a thread) until a call is granted, and returns its permit; there is no timeout.</summary>
        public Task<Permit> AcquireAsync(string tenantId, CancellationToken cancellationToken = default(CancellationToken))
        {
            return AcquireAsync(tenantId, Timeout.InfiniteTimeSpan, cancellationToken);
        }

        /// <summary>
        /// Waits without blocking a thread until a call is granted, and returns its permit. The library decides when to
        /// give up, and then <see cref="RateLimitWaitTooLongException"/> is thrown (with the last refusal's wait and
        /// reason): when <paramref name="timeout"/> (limiter clock; <see cref="Timeout.InfiniteTimeSpan"/>: none) has
        /// passed, or at once when the wait certainly ends after it (e.g. a day limit). Between steps it sleeps as the
        /// library says, waking sooner when this process frees capacity. A cancelled
        /// <paramref name="cancellationToken"/> ends it with <see cref="OperationCanceledException"/>;
        /// <see cref="Interrupt"/> with <see cref="LimiterInterruptedException"/>.
        /// </summary>
        public Task<Permit> AcquireAsync(string tenantId, TimeSpan timeout, CancellationToken cancellationToken = default(CancellationToken))
        {
            return AcquireAsync(tenantId, Native.TimeoutMs(timeout, "timeout"), cancellationToken, null);
        }

        // The handler's wait: its timeout in ms, and a callback told of the first refusal (its Waiting event).
        internal async Task<Permit> AcquireAsync(string tenantId, ulong timeoutMs, CancellationToken cancellationToken,
            Action<Decision> onFirstRefusal)
        {
            byte[] tenant = Native.Tenant(tenantId);
            ulong deadline = DeadlineMs(timeoutMs);
            XgWaitStep step = NewStep(); // through every step: the library keeps the wait's start in it
            Decision first = null;
            try
            {
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    // Taken before asking, so a release between the refusal and the sleep is not missed.
                    Task woken = Volatile.Read(ref wake).Task;
                    Step(tenant, deadline, 0, ref step);
                    if (step.Outcome == NativeMethods.WaitGranted)
                    {
                        FailurePolicy? fallback = Fallback(step.Fallback);
                        Waited(tenantId, first, new Decision(true, null, 0, null, fallback), step);
                        return new Permit(this, step.Permit, tenantId, fallback);
                    }
                    Decision refusal = Refusal(step);
                    if (step.Outcome == NativeMethods.WaitGiveUp)
                    {
                        Waited(tenantId, first, refusal, step);
                        throw new RateLimitWaitTooLongException(tenantId, refusal.Wait, refusal.Reason, Native.Duration(timeoutMs));
                    }
                    if (first == null)
                    {
                        first = WaitBegan(tenantId, step);
                        if (onFirstRefusal != null) onFirstRefusal(refusal);
                    }
                    if (step.SleepMs == 0) continue;
                    using (var delayCancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                    {
                        Task delay = Task.Delay(Native.DelayFor(step.SleepMs), delayCancel.Token);
                        await Task.WhenAny(delay, woken).ConfigureAwait(false);
                        delayCancel.Cancel(); // frees the timer when woken early
                    }
                }
            }
            catch (Exception e) when (first != null && !(e is RateLimitWaitTooLongException))
            {
                WaitBroken(tenantId, first, step, e);
                throw;
            }
        }

        /// <summary>
        /// Ends every wait on this limiter, now and later: blocked <see cref="AcquireWait(string, TimeSpan, CancellationToken)"/>
        /// calls and pending <see cref="AcquireAsync(string, TimeSpan, CancellationToken)"/> tasks (and the handler's
        /// waits) end with <see cref="LimiterInterruptedException"/>. Every other member keeps working. Shutting down:
        /// call this, wait for the threads and tasks that were waiting to end, then <see cref="Dispose"/>.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        public void Interrupt()
        {
            Native.Ensure(NativeMethods.xg_limiter_interrupt(Handle));
            Signal(); // async waiters ask again and are told
        }

        /// <summary>Counts a call made without the limiter, now (it counts even over a limit: it happened).</summary>
        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        public void Record(string tenantId)
        {
            byte[] tenant = Native.Tenant(tenantId);
            Native.Ensure(NativeMethods.xg_limiter_record(Handle, tenant, Native.Len(tenant)));
        }

        /// <summary>Gives back a permit. <see cref="UnknownPermitException"/> when it is not held (released twice, or expired).</summary>
        public void Release(Permit permit)
        {
            if (permit == null) throw new ArgumentNullException("permit");
            if (permit.Owner != this) throw new ArgumentException("the permit belongs to another limiter", "permit");
            permit.MarkReleased();
            Native.Ensure(NativeMethods.xg_limiter_release(Handle, permit.Id));
            Signal();
        }

        // Permit.Dispose: never throws (an expired permit or a disposed limiter leaves nothing to give back; a store
        // that failed is counted by the library).
        internal void ReleaseQuietly(ulong permitId)
        {
            ReleaseReporting(permitId);
        }

        // The handler's release of a permit it holds: what went wrong (a store out of reach), or null; never throws.
        internal Exception ReleaseReporting(Permit permit)
        {
            return permit.MarkReleased() ? ReleaseReporting(permit.Id) : null;
        }

        private Exception ReleaseReporting(ulong permitId)
        {
            if (handle.IsClosed) return null;
            try
            {
                Native.Ensure(NativeMethods.xg_limiter_release(handle, permitId));
            }
            catch (UnknownPermitException) { }
            catch (ObjectDisposedException) { }
            catch (XeroGuardException e)
            {
                Signal();
                return e;
            }
            Signal();
            return null;
        }

        /// <summary>Books the tenant's next free slot (first come, first served); it takes no concurrency permit.</summary>
        public Reservation Reserve(string tenantId)
        {
            byte[] tenant = Native.Tenant(tenantId);
            var r = new XgReservation { StructSize = Native.SizeOf<XgReservation>() };
            Native.Ensure(NativeMethods.xg_limiter_reserve(Handle, tenant, Native.Len(tenant), ref r));
            return new Reservation(r.Id, Native.ClampToLong(r.AtMs), Native.ClampToLong(r.WaitMs));
        }

        /// <summary>Frees a reserved slot whose time has not come (<see cref="UnknownReservationException"/> otherwise).</summary>
        public void Cancel(Reservation reservation)
        {
            if (reservation == null) throw new ArgumentNullException("reservation");
            Native.Ensure(NativeMethods.xg_limiter_cancel(Handle, reservation.Id));
            Signal();
        }

        /// <summary>Takes the server's feedback on a call: remaining counts, 429 blocks, offline and outage blocks.</summary>
        public void Observe(string tenantId, Classification classification)
        {
            if (classification == null) throw new ArgumentNullException("classification");
            byte[] tenant = Native.Tenant(tenantId);
            XgClassification c = classification.Native;
            Native.Ensure(NativeMethods.xg_limiter_observe(Handle, tenant, Native.Len(tenant), ref c));
        }

        /// <summary>As <see cref="Observe(string, Classification)"/>, from a raw HTTP response.</summary>
        public void Observe(string tenantId, byte[] rawResponse)
        {
            if (rawResponse == null) throw new ArgumentNullException("rawResponse");
            byte[] tenant = Native.Tenant(tenantId);
            Native.Ensure(NativeMethods.xg_limiter_observe_raw(Handle, tenant, Native.Len(tenant), rawResponse, Native.Len(rawResponse)));
        }

        /// <summary>The tenant's windows, permits, blocks and what acquire would answer, now.</summary>
        public LimiterSnapshot Snapshot(string tenantId)
        {
            byte[] tenant = Native.Tenant(tenantId);
            IntPtr json;
            Native.Ensure(NativeMethods.xg_limiter_snapshot_json(Handle, tenant, Native.Len(tenant), out json));
            byte[] bytes = Native.TakeString(json);
            LimiterSnapshot snapshot;
            using (var stream = new MemoryStream(bytes, false))
            {
                snapshot = (LimiterSnapshot)SnapshotSerializer.ReadObject(stream);
            }
            snapshot.Json = Encoding.UTF8.GetString(bytes);
            return snapshot;
        }

        /// <summary>Sets a tenant's own limits, or clears them with null. Its recorded calls are kept.</summary>
        public void SetTenantLimits(string tenantId, TenantLimits limits)
        {
            byte[] tenant = Native.Tenant(tenantId);
            if (limits == null)
            {
                Native.Ensure(NativeMethods.xg_limiter_clear_tenant_limits(Handle, tenant, Native.Len(tenant), IntPtr.Zero));
            }
            else
            {
                var l = new XgTenantLimits
                {
                    StructSize = Native.SizeOf<XgTenantLimits>(),
                    MinuteLimit = (uint)limits.MinuteLimit,
                    DayLimit = (uint)limits.DayLimit,
                    Concurrency = (uint)limits.Concurrency,
                };
                Native.Ensure(NativeMethods.xg_limiter_set_tenant_limits(Handle, tenant, Native.Len(tenant), ref l));
            }
            Signal();
        }

        /// <summary>True once <see cref="Dispose"/> was called.</summary>
        public bool IsDisposed { get { return handle.IsClosed; } }

        /// <summary>Frees the native limiter once no call is using it; later calls throw <see cref="ObjectDisposedException"/>.</summary>
        public void Dispose()
        {
            handle.Dispose();
            Signal(); // async waiters wake and see the limiter is gone
        }

        private LimiterHandle Handle
        {
            get
            {
                if (handle.IsClosed) throw new ObjectDisposedException(typeof(Limiter).FullName);
                return handle;
            }
        }

        private static TaskCompletionSource<bool> NewWake()
        {
            return new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        private void Signal()
        {
            Interlocked.Exchange(ref wake, NewWake()).TrySetResult(true);
        }

        private static XgDecision NewDecision()
        {
            return new XgDecision { StructSize = Native.SizeOf<XgDecision>() };
        }

        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        private ulong DeadlineMs(ulong timeoutMs)
        {
            ulong deadline;
            Native.Ensure(NativeMethods.xg_limiter_deadline_ms(Handle, timeoutMs, out deadline));
            return deadline;
        }

        private static XgWaitStep NewStep()
        {
            return new XgWaitStep { StructSize = Native.SizeOf<XgWaitStep>() };
        }

        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        private void Step(byte[] tenant, ulong deadline, ulong maxBlockMs, ref XgWaitStep step)
        {
            Native.Ensure(NativeMethods.xg_limiter_acquire_until(Handle, tenant, Native.Len(tenant), deadline, maxBlockMs, ref step));
        }

        private static XgStats NewStats()
        {
            return new XgStats
            {
                StructSize = Native.SizeOf<XgStats>(),
                Refused = new ulong[XgStats.ReasonSlots],
                Fallbacks = new ulong[XgStats.FailurePolicySlots],
                WaitBucketLeMs = new ulong[XgStats.WaitBucketSlots],
                WaitBuckets = new ulong[XgStats.WaitBucketSlots],
                Responses = new ulong[XgStats.CategorySlots],
                RateLimited = new ulong[XgStats.RateLimitProblemSlots],
                StoreFailures = new ulong[XgStats.StoreFailureKindSlots],
            };
        }

        private static FailurePolicy? Fallback(uint code)
        {
            return code == 0 ? (FailurePolicy?)null : (FailurePolicy)code;
        }

        private static Decision Refusal(XgWaitStep step)
        {
            return new Decision(false, null, Native.ClampToLong(step.WaitMs), step.Reason == 0 ? (Reason?)null : (Reason)step.Reason,
                Fallback(step.Fallback));
        }

        private Decision ToDecision(XgDecision d, string tenantId, bool withPermit)
        {
            FailurePolicy? fallback = Fallback(d.Fallback);
            if (d.Granted == 1)
                return new Decision(true, withPermit ? new Permit(this, d.Permit, tenantId, fallback) : null, 0, null, fallback);
            return new Decision(false, null, Native.ClampToLong(d.WaitMs), d.Reason == 0 ? (Reason?)null : (Reason)d.Reason, fallback);
        }
    }
}
