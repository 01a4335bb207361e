using System;
using System.Collections.Generic;
using System.Diagnostics.Metrics;
using System.Linq;
using System.Text;

namespace XeroGuard.Tests
{
    // LimiterMetrics (the .NET 6 Meter), compiled by run-tests.sh against stand-ins of System.Diagnostics.Metrics that
    // keep the instruments, so what it publishes can be collected here.
    internal static class MetricsTests
    {
        private const string T = "4f8a2a1e-0000-4000-8000-000000000001";

        private static IEnumerable<Measurement<long>> Collect(LimiterMetrics metrics, string name)
        {
            var instrument = metrics.Meter.Instruments.SingleOrDefault(i => i.Name == name) as ObservableInstrument<long>;
            Assert.True(instrument != null, "an observable instrument " + name);
            return instrument.Collect().ToList();
        }

        private static string Tags(Measurement<long> m)
        {
            return string.Join(",", m.TagList.Select(t => t.Key + "=" + t.Value));
        }

        // The value of the one measurement with exactly these tags.
        private static long Value(LimiterMetrics metrics, string name, string tags)
        {
            var found = Collect(metrics, name).Where(m => Tags(m) == tags).ToList();
            Assert.Equal(1, found.Count, name + "{" + tags + "}");
            return found[0].Value;
        }

        public static void Register(Runner r)
        {
            r.Run("metrics/the_meter_publishes_the_statistics", () =>
            {
                using (var l = new Limiter(new Limits { TenantMinute = new WindowLimit(60, 60000, 0) }, LimiterClock.Manual))
                using (var metrics = new LimiterMetrics(l, "app"))
                {
                    Assert.Equal("Xeroguard", metrics.Meter.Name, "the Meter's name");
                    for (int i = 0; i < 60; i++) l.Record(T);
                    Assert.True(!l.Acquire(T).Granted, "refused for the minute");
                    Assert.True(!l.AcquireWait(T, 1000).Granted, "a wait given up at once");
                    l.Acquire("other").Permit.Dispose();
                    l.Observe(T, Encoding.ASCII.GetBytes("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nX-Rate-Limit-Problem: minute\r\n\r\n"));

                    Assert.Equal(1L, Value(metrics, "xeroguard.decisions", "limiter=app,result=granted,reason="), "granted");
                    Assert.Equal(2L, Value(metrics, "xeroguard.decisions", "limiter=app,result=refused,reason=minute"), "refused");
                    Assert.Equal(0L, Value(metrics, "xeroguard.decisions", "limiter=app,result=refused,reason=day"), "every reason");
                    Assert.Equal(1L, Value(metrics, "xeroguard.waits.started", "limiter=app"), "waits started");
                    Assert.Equal(1L, Value(metrics, "xeroguard.waits", "limiter=app,outcome=given_up"), "waits given up");
                    Assert.Equal(1L, Value(metrics, "xeroguard.responses", "limiter=app,category=rate_limited"), "429s");
                    Assert.Equal(1L, Value(metrics, "xeroguard.rate_limited", "limiter=app,problem=minute"), "by problem");
                    Assert.Equal(0L, Value(metrics, "xeroguard.store.fallbacks", "limiter=app,policy=open"), "fallbacks");
                    Assert.Equal(0, Collect(metrics, "xeroguard.store.operations").Count(), "no store figures without a store");
                    Assert.Equal(0, Collect(metrics, "xeroguard.breaker.open").Count(), "no breaker without a store");
                    Assert.True(metrics.Meter.Instruments.All(i => i.Name.StartsWith("xeroguard.")), "one prefix");

                    var histogram = metrics.Meter.Instruments.OfType<Histogram<double>>().Single();
                    Assert.True(histogram.Name == "xeroguard.wait" && histogram.Unit == "s", "the wait histogram, in seconds");
                    Assert.Equal(1, histogram.Recorded.Count, "the wait recorded as it ended");
                    Assert.True(histogram.Recorded[0].Value == 0.0 &&
                        string.Join(",", histogram.Recorded[0].TagList.Select(t => t.Key + "=" + t.Value)) == "limiter=app,outcome=given_up",
                        "its length and outcome");

                    metrics.Dispose();
                    Assert.True(metrics.Meter.Disposed, "disposing ends the Meter");
                    Assert.True(!l.AcquireWait(T, 1000).Granted, "another wait");
                    Assert.Equal(1, histogram.Recorded.Count, "not recorded once disposed");
                }
            });

            r.Run("metrics/a_disposed_limiter_publishes_nothing", () =>
            {
                var l = new Limiter(null, LimiterClock.Manual);
                using (var metrics = new LimiterMetrics(l))
                {
                    Assert.Equal("result=granted,reason=", Tags(Collect(metrics, "xeroguard.decisions").First()), "no limiter tag unless named");
                    l.Dispose();
                    Assert.Equal(0, Collect(metrics, "xeroguard.decisions").Count(), "nothing, and no exception");
                }
            });
        }
    }
}
