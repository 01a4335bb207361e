#if NET6_0_OR_GREATER
// System.Diagnostics.Metrics is part of .NET 6 and later; the netstandard2.0 build has no LimiterMetrics. This file
// uses only the binding's public members, so the test run (Mono, without .NET 6) compiles it on its own against
// stand-ins of the Meter API (tests/metrics/MeterStandIns.cs) and checks what it publishes.
using System;
using System.Collections.Generic;
using System.Diagnostics.Metrics;
using System.Linq;

namespace XeroGuard
{
    /// <summary>
    /// Publishes a limiter's statistics as instruments of a <see cref="System.Diagnostics.Metrics.Meter"/> named
    /// <c>Xeroguard</c> (<see cref="MeterName"/>), for OpenTelemetry (<c>AddMeter("Xeroguard")</c>), dotnet-counters or
    /// a MeterListener. The counters and gauges read <see cref="Limiter.GetStatistics"/> when collected (the library
    /// counts; nothing is counted twice); the wait histogram records each wait as it ends (<see cref="Limiter.WaitEnded"/>).
    /// Instruments (named as the Prometheus metrics of the Python binding once exported): <c>xeroguard.decisions</c>
    /// {result, reason}, <c>xeroguard.waits.started</c>, <c>xeroguard.waits</c> {outcome}, <c>xeroguard.wait</c> (a
    /// histogram, seconds), <c>xeroguard.responses</c> {category}, <c>xeroguard.rate_limited</c> {problem},
    /// <c>xeroguard.store.fallbacks</c> {policy}, and for a limiter sharing its state through Redis
    /// <c>xeroguard.store.operations</c>, <c>xeroguard.store.errors</c> {kind}, <c>xeroguard.breaker.open</c>,
    /// <c>xeroguard.breaker.openings</c> and <c>xeroguard.store.replays_pending</c>. No tenant tag: thousands of tenants
    /// would make thousands of series. Dispose it (before the limiter) to stop publishing.
    /// </summary>
    public sealed class LimiterMetrics : IDisposable
    {
        /// <summary>The Meter's name: <c>Xeroguard</c>.</summary>
        public const string MeterName = "Xeroguard";

        private readonly Limiter limiter;
        private readonly KeyValuePair<string, object>[] own;
        private readonly Histogram<double> waits;

        /// <summary>
        /// Publishes <paramref name="limiter"/>'s statistics; <paramref name="limiterName"/> (optional) tags every
        /// measurement with <c>limiter</c>, to tell several limiters of one process apart.
        /// </summary>
        public LimiterMetrics(Limiter limiter, string limiterName = null)
        {
            if (limiter == null) throw new ArgumentNullException("limiter");
            this.limiter = limiter;
            own = limiterName == null
                ? new KeyValuePair<string, object>[0]
                : new[] { new KeyValuePair<string, object>("limiter", limiterName) };
            Meter = new Meter(MeterName, Library.Version);
            Meter.CreateObservableCounter<long>("xeroguard.decisions", Decisions, null,
                "Permits granted and calls refused (by reason).");
            Meter.CreateObservableCounter<long>("xeroguard.waits.started",
                () => Read(s => One(s.WaitsStarted)), null, "Waits for a permit that began with a refusal.");
            Meter.CreateObservableCounter<long>("xeroguard.waits", () => Read(s => new[]
            {
                Tagged(s.WaitsGranted, "outcome", "granted"),
                Tagged(s.WaitsGivenUp, "outcome", "given_up"),
                Tagged(s.WaitsInterrupted, "outcome", "interrupted"),
            }), null, "Waits for a permit that ended, by outcome.");
            Meter.CreateObservableCounter<long>("xeroguard.responses",
                () => Read(s => ByWord(s.Responses, "category", Vocabulary.Name)), null,
                "Responses fed back to the limiter, by category.");
            Meter.CreateObservableCounter<long>("xeroguard.rate_limited",
                () => Read(s => ByWord(s.RateLimited, "problem", Vocabulary.Name)), null,
                "429 responses observed, by rate-limit problem.");
            Meter.CreateObservableCounter<long>("xeroguard.store.fallbacks",
                () => Read(s => ByWord(s.Fallbacks, "policy", Vocabulary.Name)), null,
                "Decisions a failure policy made because the shared store could not.");
            Meter.CreateObservableCounter<long>("xeroguard.store.operations",
                () => Read(s => Store(s, One(s.StoreOperations))), null, "Operations sent to the shared store.");
            Meter.CreateObservableCounter<long>("xeroguard.store.errors",
                () => Read(s => Store(s, ByWord(s.StoreFailures, "kind", Vocabulary.Name))), null,
                "Failed operations on the shared store, by kind.");
            Meter.CreateObservableGauge<long>("xeroguard.breaker.open",
                () => Read(s => Store(s, One(s.BreakerOpen ? 1 : 0))), null,
                "1 while the store's breaker is open (the failure policy decides).");
            Meter.CreateObservableCounter<long>("xeroguard.breaker.openings",
                () => Read(s => Store(s, One(s.BreakerOpenings))), null, "Times the store's breaker opened.");
            Meter.CreateObservableGauge<long>("xeroguard.store.replays_pending",
                () => Read(s => Store(s, One(s.ReplaysPending))), null,
                "Releases and cancels the store has not confirmed yet.");
            waits = Meter.CreateHistogram<double>("xeroguard.wait", "s", "How long ended waits for a permit lasted.");
            limiter.WaitEnded += OnWaitEnded;
        }

        /// <summary>The Meter the instruments belong to.</summary>
        public Meter Meter { get; private set; }

        /// <summary>Stops publishing: the instruments end and the limiter's events are left.</summary>
        public void Dispose()
        {
            limiter.WaitEnded -= OnWaitEnded;
            Meter.Dispose();
        }

        private void OnWaitEnded(object sender, LimiterWaitEventArgs e)
        {
            string outcome = e.Outcome == WaitOutcome.GaveUp ? "given_up" : e.Outcome.ToString().ToLowerInvariant();
            waits.Record(e.Waited.TotalSeconds, Tags("outcome", outcome));
        }

        private IEnumerable<Measurement<long>> Decisions()
        {
            return Read(s => new[] { Tagged(s.Granted, "result", "granted", "reason", "") }
                .Concat(s.Refused.Select(r => Tagged(r.Value, "result", "refused", "reason", Vocabulary.Name(r.Key)))));
        }

        // No measurements once the limiter is gone: a collection must not throw.
        private IEnumerable<Measurement<long>> Read(Func<LimiterStatistics, IEnumerable<Measurement<long>>> measure)
        {
            if (limiter.IsDisposed) return new Measurement<long>[0];
            try
            {
                return measure(limiter.GetStatistics()).ToList();
            }
            catch (ObjectDisposedException)
            {
                return new Measurement<long>[0];
            }
        }

        private static IEnumerable<Measurement<long>> Store(LimiterStatistics s, IEnumerable<Measurement<long>> m)
        {
            return s.Shared ? m : new Measurement<long>[0];
        }

        private IEnumerable<Measurement<long>> One(long value)
        {
            return new[] { new Measurement<long>(value, own) };
        }

        private IEnumerable<Measurement<long>> ByWord<T>(IReadOnlyDictionary<T, long> counts, string tag, Func<T, string> word)
        {
            return counts.Select(c => Tagged(c.Value, tag, word(c.Key)));
        }

        private Measurement<long> Tagged(long value, params string[] tagsAndValues)
        {
            return new Measurement<long>(value, Tags(tagsAndValues));
        }

        private KeyValuePair<string, object>[] Tags(params string[] tagsAndValues)
        {
            var tags = new List<KeyValuePair<string, object>>(own);
            for (int i = 0; i + 1 < tagsAndValues.Length; i += 2)
                tags.Add(new KeyValuePair<string, object>(tagsAndValues[i], tagsAndValues[i + 1]));
            return tags.ToArray();
        }
    }
}
#endif
