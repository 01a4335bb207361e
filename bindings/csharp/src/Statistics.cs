using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Diagnostics;
using System.Linq;

namespace XeroGuard
{
    /// <summary>
    /// What a limiter decided, waited for and was told since it was made (<see cref="Limiter.GetStatistics"/>, read from
    /// the library's counters: xg_limiter_stats). Immutable. Decisions are <see cref="Limiter.Acquire"/>'s answers and each
    /// wait's first answer and final grant, not the re-asks in between: <see cref="Granted"/> is exactly the permits
    /// handed out, <see cref="Refused"/> the refusals callers were told of; peeks and reservations are not counted. A wait
    /// whose first answer was a refusal counts in <see cref="WaitsStarted"/>, and when it ends in one of
    /// <see cref="WaitsGranted"/>, <see cref="WaitsGivenUp"/> (the timeout) or <see cref="WaitsInterrupted"/>
    /// (<see cref="Limiter.Interrupt"/> or an error), with its length in <see cref="WaitTimeTotal"/> and
    /// <see cref="WaitBuckets"/>; a wait its caller cancels never ends. The store figures are all zero for a limiter of
    /// this process.
    /// </summary>
    public sealed class LimiterStatistics
    {
        internal LimiterStatistics(XgStats s)
        {
            Granted = Count(s.Granted);
            Refused = ByCode<Reason>(s.Refused);
            Fallbacks = ByCode<FailurePolicy>(s.Fallbacks);
            WaitsStarted = Count(s.WaitsStarted);
            WaitsGranted = Count(s.WaitsGranted);
            WaitsGivenUp = Count(s.WaitsGivenUp);
            WaitsInterrupted = Count(s.WaitsInterrupted);
            WaitTimeTotal = Native.Duration(s.WaitMsTotal);
            WaitBucketUpperBounds = new ReadOnlyCollection<TimeSpan>(s.WaitBucketLeMs.Select(Native.Duration).ToList());
            WaitBuckets = new ReadOnlyCollection<long>(s.WaitBuckets.Select(Count).ToList());
            Responses = ByCode<Category>(s.Responses);
            RateLimited = ByCode<RateLimitProblem>(s.RateLimited);
            Shared = s.Shared == 1;
            BreakerOpen = s.BreakerOpen == 1;
            StoreOperations = Count(s.StoreOperations);
            StoreFailures = ByCode<StoreFailureKind>(s.StoreFailures);
            BreakerOpenings = Count(s.BreakerOpenings);
            ReplaysPending = Count(s.ReplaysPending);
        }

        /// <summary>Decisions granted: the permits handed out.</summary>
        public long Granted { get; private set; }
        /// <summary>Refusals callers were told of, by reason (every reason, zeros included).</summary>
        public IReadOnlyDictionary<Reason, long> Refused { get; private set; }
        /// <summary>All refusals.</summary>
        public long RefusedTotal { get { return Refused.Values.Sum(); } }
        /// <summary>Decisions a failure policy made because the shared store could not, by policy.</summary>
        public IReadOnlyDictionary<FailurePolicy, long> Fallbacks { get; private set; }
        /// <summary>Waits for a permit that began with a refusal.</summary>
        public long WaitsStarted { get; private set; }
        /// <summary>Waits that ended with a permit.</summary>
        public long WaitsGranted { get; private set; }
        /// <summary>Waits that ended without one: the timeout passed, or the wait certainly ended after it.</summary>
        public long WaitsGivenUp { get; private set; }
        /// <summary>Waits ended by <see cref="Limiter.Interrupt"/> or an error.</summary>
        public long WaitsInterrupted { get; private set; }
        /// <summary>Waits that ended, however.</summary>
        public long WaitsEnded { get { return WaitsGranted + WaitsGivenUp + WaitsInterrupted; } }
        /// <summary>The ended waits' lengths added up.</summary>
        public TimeSpan WaitTimeTotal { get; private set; }
        /// <summary>Each wait bucket's upper bound (inclusive): 10 ms, 100 ms, 1 s, 10 s, 65 s, 10 min and <see cref="TimeSpan.MaxValue"/>.</summary>
        public IReadOnlyList<TimeSpan> WaitBucketUpperBounds { get; private set; }
        /// <summary>Ended waits per bucket of <see cref="WaitBucketUpperBounds"/> (not cumulative).</summary>
        public IReadOnlyList<long> WaitBuckets { get; private set; }
        /// <summary>Responses fed back to the limiter (<see cref="Limiter.Observe(string, Classification)"/>), by category.</summary>
        public IReadOnlyDictionary<Category, long> Responses { get; private set; }
        /// <summary>The 429 responses observed, by rate-limit problem: these should stay at zero.</summary>
        public IReadOnlyDictionary<RateLimitProblem, long> RateLimited { get; private set; }
        /// <summary>True for a limiter whose state lives in a shared store (Redis): the store figures are its.</summary>
        public bool Shared { get; private set; }
        /// <summary>True while the store's breaker is open: the store is not asked and the failure policy decides.</summary>
        public bool BreakerOpen { get; private set; }
        /// <summary>Operations sent to the store.</summary>
        public long StoreOperations { get; private set; }
        /// <summary>Failed store operations, by kind.</summary>
        public IReadOnlyDictionary<StoreFailureKind, long> StoreFailures { get; private set; }
        /// <summary>Times the store's breaker opened.</summary>
        public long BreakerOpenings { get; private set; }
        /// <summary>Releases and cancels the store has not confirmed yet, replayed when it answers.</summary>
        public long ReplaysPending { get; private set; }

        private static long Count(ulong value)
        {
            return Native.ClampToLong(value);
        }

        // Counts indexed by code, for every member of the enum (a code this binding does not know is left out).
        private static IReadOnlyDictionary<T, long> ByCode<T>(ulong[] counts) where T : struct
        {
            var byMember = new Dictionary<T, long>();
            foreach (T member in Enum.GetValues(typeof(T)))
            {
                int code = Convert.ToInt32(member);
                if (code < counts.Length) byMember[member] = Count(counts[code]);
            }
            return new ReadOnlyDictionary<T, long>(byMember);
        }
    }

    /// <summary>How a wait for a permit ended (<see cref="Limiter.WaitEnded"/>).</summary>
    public enum WaitOutcome
    {
        /// <summary>A permit came.</summary>
        Granted,
        /// <summary>The library gave up: the timeout passed, or the wait certainly ended after it.</summary>
        GaveUp,
        /// <summary><see cref="Limiter.Interrupt"/> ended it.</summary>
        Interrupted,
        /// <summary>Its caller stopped waiting: a cancelled token, or another exception.</summary>
        Abandoned,
    }

    /// <summary><see cref="Limiter.WaitStarted"/> and <see cref="Limiter.WaitEnded"/>: a wait for a permit, for one tenant.</summary>
    public sealed class LimiterWaitEventArgs : EventArgs
    {
        internal LimiterWaitEventArgs(string tenantId, Decision refusal, TimeSpan waited, WaitOutcome? outcome)
        {
            TenantId = tenantId;
            Reason = refusal.Reason;
            Fallback = refusal.Fallback;
            RefusalWait = refusal.Wait;
            Waited = waited;
            Outcome = outcome;
        }

        /// <summary>The tenant waiting (<see cref="Limiter.Tenantless"/> for a call without one).</summary>
        public string TenantId { get; private set; }
        /// <summary>Why the wait began: the first refusal's reason.</summary>
        public Reason? Reason { get; private set; }
        /// <summary>The failure policy that made the first refusal, or null when the limiter's state did.</summary>
        public FailurePolicy? Fallback { get; private set; }
        /// <summary>How long the first refusal said to wait (a release may end the wait sooner).</summary>
        public TimeSpan RefusalWait { get; private set; }
        /// <summary>How long the wait lasted, on the limiter's clock (zero when it starts).</summary>
        public TimeSpan Waited { get; private set; }
        /// <summary>How it ended; null when it starts.</summary>
        public WaitOutcome? Outcome { get; private set; }
    }

    /// <summary>Where an outage of the shared store stands (<see cref="StoreOutageEventArgs.State"/>).</summary>
    public enum StoreOutageState
    {
        /// <summary>The first decision made by the failure policy: the store could not be reached.</summary>
        Began,
        /// <summary>It lasts (raised about once a minute while the failure policy keeps deciding).</summary>
        Continuing,
        /// <summary>The store decided again.</summary>
        Ended,
    }

    /// <summary>
    /// <see cref="Limiter.StoreOutage"/>: the failure policy decides because the shared store cannot be reached, told once
    /// when it begins, about once a minute while it lasts and once when it ends, with a count of the decisions it made.
    /// </summary>
    public sealed class StoreOutageEventArgs : EventArgs
    {
        internal StoreOutageEventArgs(StoreOutageState state, FailurePolicy policy, long decisions, TimeSpan duration)
        {
            State = state;
            Policy = policy;
            Decisions = decisions;
            Duration = duration;
        }

        /// <summary>Began, continuing or ended.</summary>
        public StoreOutageState State { get; private set; }
        /// <summary>The failure policy deciding (<see cref="RedisOptions.OnStoreError"/>).</summary>
        public FailurePolicy Policy { get; private set; }
        /// <summary>The decisions the policy made since the outage began.</summary>
        public long Decisions { get; private set; }
        /// <summary>How long the outage has lasted (this process's view: from its first fallback decision).</summary>
        public TimeSpan Duration { get; private set; }
    }

    /// <summary><see cref="Limiter.BreakerChanged"/>: the store's breaker opened or closed since the last reading of the statistics.</summary>
    public sealed class BreakerEventArgs : EventArgs
    {
        internal BreakerEventArgs(bool open, long openings)
        {
            Open = open;
            Openings = openings;
        }

        /// <summary>True when it is open now.</summary>
        public bool Open { get; private set; }
        /// <summary>Times it opened since the limiter was made.</summary>
        public long Openings { get; private set; }
    }

    // The binding's view of outages and of the breaker: it decides nothing, only tells, from what the library says (a
    // decision's Fallback; the statistics' breaker state).
    internal sealed class OutageWatch
    {
        internal static TimeSpan RemindEvery = TimeSpan.FromMinutes(1);

        private readonly object gate = new object();
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private FailurePolicy? policy;
        private TimeSpan began, reminded;
        private long decisions;
        private bool breakerOpen;
        private long breakerOpenings;

        // Read without the lock on every decision: an outage is rare, its end is seen on the next decision.
        internal volatile bool InOutage;

        // A decision's fallback; returns the event to raise, if any.
        internal StoreOutageEventArgs Decided(FailurePolicy? fallback)
        {
            lock (gate)
            {
                TimeSpan now = clock.Elapsed;
                if (fallback == null)
                {
                    if (policy == null) return null;
                    var ended = new StoreOutageEventArgs(StoreOutageState.Ended, policy.Value, decisions, now - began);
                    policy = null;
                    InOutage = false;
                    return ended;
                }
                if (policy == null)
                {
                    policy = fallback;
                    began = reminded = now;
                    decisions = 1;
                    InOutage = true;
                    return new StoreOutageEventArgs(StoreOutageState.Began, fallback.Value, 1, TimeSpan.Zero);
                }
                decisions++;
                if (now - reminded < RemindEvery) return null;
                reminded = now;
                return new StoreOutageEventArgs(StoreOutageState.Continuing, policy.Value, decisions, now - began);
            }
        }

        // The breaker's change since the last reading, if any.
        internal BreakerEventArgs Saw(LimiterStatistics stats)
        {
            lock (gate)
            {
                bool changed = stats.BreakerOpen != breakerOpen || stats.BreakerOpenings != breakerOpenings;
                breakerOpen = stats.BreakerOpen;
                breakerOpenings = stats.BreakerOpenings;
                return changed ? new BreakerEventArgs(stats.BreakerOpen, stats.BreakerOpenings) : null;
            }
        }
    }
}
