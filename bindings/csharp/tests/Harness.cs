using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.Serialization.Json;
using System.Text;
using System.Xml;

namespace XeroGuard.Tests
{
    // A minimal runner: each test is a named action; a thrown exception is a failure.
    internal sealed class Runner
    {
        private readonly string filter;
        public int Passed;
        public int Failed;
        public readonly List<string> Failures = new List<string>();

        public Runner(string filter) { this.filter = filter; }

        public void Run(string name, System.Action test)
        {
            if (filter != null && name.IndexOf(filter, StringComparison.Ordinal) < 0) return;
            var started = DateTime.UtcNow;
            try
            {
                test();
                Passed++;
                Console.WriteLine("ok   {0} ({1:0} ms)", name, (DateTime.UtcNow - started).TotalMilliseconds);
            }
            catch (Exception e)
            {
                Failed++;
                Failures.Add(name);
                Console.WriteLine("FAIL {0}: {1}", name, e);
            }
        }
    }

    internal sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    internal static class Assert
    {
        public static void True(bool condition, string what)
        {
            if (!condition) throw new AssertionException(what);
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new AssertionException(string.Format("{0}: expected <{1}>, got <{2}>", what, Show(expected), Show(actual)));
        }

        public static void Sequence<T>(IEnumerable<T> expected, IEnumerable<T> actual, string what)
        {
            var e = expected.ToList();
            var a = actual.ToList();
            if (!e.SequenceEqual(a))
                throw new AssertionException(string.Format("{0}: expected [{1}], got [{2}]", what,
                    string.Join(" | ", e.Select(x => Show(x))), string.Join(" | ", a.Select(x => Show(x)))));
        }

        public static TException Throws<TException>(System.Action action, string what) where TException : Exception
        {
            try
            {
                action();
            }
            catch (TException e)
            {
                return e;
            }
            catch (AggregateException e) when (e.InnerExceptions.Count == 1 && e.InnerException is TException)
            {
                return (TException)e.InnerException;
            }
            catch (Exception e)
            {
                throw new AssertionException(string.Format("{0}: expected {1}, got {2}", what, typeof(TException).Name, e));
            }
            throw new AssertionException(string.Format("{0}: expected {1}, nothing was thrown", what, typeof(TException).Name));
        }

        private static string Show(object value)
        {
            return value == null ? "null" : value.ToString();
        }
    }

    // A generic JSON tree via the JSON-to-XML mapping of System.Runtime.Serialization (no extra packages).
    internal sealed class JsonNode
    {
        private readonly XmlElement element;

        private JsonNode(XmlElement element) { this.element = element; }

        public static JsonNode Parse(byte[] utf8)
        {
            using (XmlDictionaryReader reader = JsonReaderWriterFactory.CreateJsonReader(utf8, XmlDictionaryReaderQuotas.Max))
            {
                var doc = new XmlDocument();
                doc.Load(reader);
                return new JsonNode(doc.DocumentElement);
            }
        }

        public static JsonNode Parse(string text) { return Parse(Encoding.UTF8.GetBytes(text)); }

        public string Type
        {
            get { var t = element.GetAttribute("type"); return string.IsNullOrEmpty(t) ? "string" : t; }
        }

        public bool IsNull { get { return Type == "null"; } }

        // Keys that are not XML names are mapped to <item item="key">.
        public string Key
        {
            get { var k = element.GetAttribute("item"); return string.IsNullOrEmpty(k) ? element.LocalName : k; }
        }

        public IEnumerable<JsonNode> Children
        {
            get { return element.ChildNodes.OfType<XmlElement>().Select(e => new JsonNode(e)); }
        }

        public JsonNode this[string key]
        {
            get { return Children.FirstOrDefault(c => c.Key == key); }
        }

        public bool Has(string key) { return this[key] != null; }
        public string String { get { return IsNull ? null : element.InnerText; } }
        public long? Long { get { return IsNull ? (long?)null : long.Parse(element.InnerText, System.Globalization.CultureInfo.InvariantCulture); } }
        public bool Bool { get { return element.InnerText == "true"; } }
    }
}
