// Stand-ins for System.Diagnostics.Metrics (.NET 6 and later), which Mono lacks: the members src/Metrics.cs calls,
// with the signatures .NET declares (learn.microsoft.com, System.Diagnostics.Metrics: Meter, Measurement<T>,
// ObservableCounter<T>, ObservableGauge<T>, Histogram<T>), including the overloads a call must choose between. Unlike
// tests/docs/StandIns.cs these behave: the Meter keeps its instruments, an observable instrument can be collected
// and a histogram keeps what it recorded, so MetricsTests checks what LimiterMetrics publishes. run-tests.sh compiles
// them with src/Metrics.cs and NET6_0_OR_GREATER into XeroGuard.Metrics.dll for the tests.
#pragma warning disable 1591
using System;
using System.Collections.Generic;
using System.Linq;

namespace System.Diagnostics.Metrics
{
    public class Meter : IDisposable
    {
        public Meter(string name) : this(name, null) { }

        public Meter(string name, string version)
        {
            Name = name;
            Version = version;
        }

        public string Name { get; private set; }
        public string Version { get; private set; }
        public readonly List<Instrument> Instruments = new List<Instrument>();
        public bool Disposed;

        public Histogram<T> CreateHistogram<T>(string name, string unit = null, string description = null) where T : struct
        {
            return Add(new Histogram<T>(this, name, unit, description));
        }

        public ObservableCounter<T> CreateObservableCounter<T>(string name, Func<T> observeValue, string unit = null,
            string description = null) where T : struct
        {
            return Add(new ObservableCounter<T>(this, name, unit, description, () => new[] { new Measurement<T>(observeValue()) }));
        }

        public ObservableCounter<T> CreateObservableCounter<T>(string name, Func<Measurement<T>> observeValue, string unit = null,
            string description = null) where T : struct
        {
            return Add(new ObservableCounter<T>(this, name, unit, description, () => new[] { observeValue() }));
        }

        public ObservableCounter<T> CreateObservableCounter<T>(string name, Func<IEnumerable<Measurement<T>>> observeValues,
            string unit = null, string description = null) where T : struct
        {
            return Add(new ObservableCounter<T>(this, name, unit, description, observeValues));
        }

        public ObservableGauge<T> CreateObservableGauge<T>(string name, Func<T> observeValue, string unit = null,
            string description = null) where T : struct
        {
            return Add(new ObservableGauge<T>(this, name, unit, description, () => new[] { new Measurement<T>(observeValue()) }));
        }

        public ObservableGauge<T> CreateObservableGauge<T>(string name, Func<Measurement<T>> observeValue, string unit = null,
            string description = null) where T : struct
        {
            return Add(new ObservableGauge<T>(this, name, unit, description, () => new[] { observeValue() }));
        }

        public ObservableGauge<T> CreateObservableGauge<T>(string name, Func<IEnumerable<Measurement<T>>> observeValues,
            string unit = null, string description = null) where T : struct
        {
            return Add(new ObservableGauge<T>(this, name, unit, description, observeValues));
        }

        public void Dispose()
        {
            Disposed = true;
        }

        private TInstrument Add<TInstrument>(TInstrument instrument) where TInstrument : Instrument
        {
            Instruments.Add(instrument);
            return instrument;
        }
    }

    public abstract class Instrument
    {
        protected Instrument(Meter meter, string name, string unit, string description)
        {
            Meter = meter;
            Name = name;
            Unit = unit;
            Description = description;
        }

        public Meter Meter { get; private set; }
        public string Name { get; private set; }
        public string Unit { get; private set; }
        public string Description { get; private set; }
    }

    public struct Measurement<T> where T : struct
    {
        private readonly T value;
        private readonly KeyValuePair<string, object>[] tags;

        public Measurement(T value) : this(value, new KeyValuePair<string, object>[0]) { }

        public Measurement(T value, IEnumerable<KeyValuePair<string, object>> tags) : this(value, tags.ToArray()) { }

        public Measurement(T value, params KeyValuePair<string, object>[] tags)
        {
            this.value = value;
            this.tags = tags ?? new KeyValuePair<string, object>[0];
        }

        public T Value { get { return value; } }

        // .NET has a ReadOnlySpan here; the tests read the tags through this instead.
        public IReadOnlyList<KeyValuePair<string, object>> TagList { get { return tags; } }
    }

    public abstract class ObservableInstrument<T> : Instrument where T : struct
    {
        private readonly Func<IEnumerable<Measurement<T>>> observe;

        protected ObservableInstrument(Meter meter, string name, string unit, string description,
            Func<IEnumerable<Measurement<T>>> observe) : base(meter, name, unit, description)
        {
            this.observe = observe;
        }

        // What a MeterListener's RecordObservableInstruments gets from it.
        public IEnumerable<Measurement<T>> Collect()
        {
            return observe();
        }
    }

    public sealed class ObservableCounter<T> : ObservableInstrument<T> where T : struct
    {
        internal ObservableCounter(Meter meter, string name, string unit, string description,
            Func<IEnumerable<Measurement<T>>> observe) : base(meter, name, unit, description, observe) { }
    }

    public sealed class ObservableGauge<T> : ObservableInstrument<T> where T : struct
    {
        internal ObservableGauge(Meter meter, string name, string unit, string description,
            Func<IEnumerable<Measurement<T>>> observe) : base(meter, name, unit, description, observe) { }
    }

    public sealed class Histogram<T> : Instrument where T : struct
    {
        public readonly List<Measurement<T>> Recorded = new List<Measurement<T>>();

        internal Histogram(Meter meter, string name, string unit, string description) : base(meter, name, unit, description) { }

        public void Record(T value)
        {
            Recorded.Add(new Measurement<T>(value));
        }

        public void Record(T value, KeyValuePair<string, object> tag)
        {
            Recorded.Add(new Measurement<T>(value, tag));
        }

        public void Record(T value, params KeyValuePair<string, object>[] tags)
        {
            Recorded.Add(new Measurement<T>(value, tags));
        }
    }
}
