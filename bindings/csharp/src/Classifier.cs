using System;
using System.Collections.Generic;
using System.Text;

namespace XeroGuard
{
    /// <summary>Classifies Xero responses through the native library (xg_classify_flat, xg_classify_raw).</summary>
    public static class Classifier
    {
        /// <summary>Classifies a response given as status, headers (any casing; repeat a name for several values) and body bytes.</summary>
        public static Classification Classify(int status, IEnumerable<KeyValuePair<string, string>> headers, byte[] body)
        {
            return Classify(status, headers, body, null);
        }

        /// <summary>
        /// As <see cref="Classify(int, IEnumerable{KeyValuePair{string, string}}, byte[])"/>, measuring a Retry-After
        /// HTTP-date against <paramref name="now"/> when the response has no Date header (null: the system clock).
        /// </summary>
        public static Classification Classify(int status, IEnumerable<KeyValuePair<string, string>> headers, byte[] body,
            DateTimeOffset? now)
        {
            if (status < 0 || status > ushort.MaxValue)
                throw new ArgumentOutOfRangeException("status", status, "an HTTP status fits in 16 bits");
            Native.EnsureAbi();

            byte[] headerBlock = HeaderBlock(headers);
            var result = new XgClassification { StructSize = Native.SizeOf<XgClassification>() };
            IntPtr json;
            Native.Ensure(NativeMethods.xg_classify_flat((ushort)status, headerBlock, Native.Len(headerBlock), body,
                Native.Len(body), UnixMs(now), ref result, out json));
            return new Classification(result, Native.TakeString(json));
        }

        // xg_classify_flat's headers: every name and value in order, separated by NUL bytes, as one UTF-8 buffer
        // (one encode, no header structs to build or pin). HTTP forbids NUL in a header (RFC 9110 section 5.5), so
        // one inside a name or value is refused here rather than read as a separator.
        private static byte[] HeaderBlock(IEnumerable<KeyValuePair<string, string>> headers)
        {
            if (headers == null) return null;
            var text = new StringBuilder();
            foreach (var h in headers)
            {
                if (h.Key == null) throw new ArgumentException("a header name is null", "headers");
                if (h.Key.IndexOf('\0') >= 0 || (h.Value != null && h.Value.IndexOf('\0') >= 0))
                    throw new ArgumentException("header " + h.Key.Replace('\0', ' ') +
                        ": names and values cannot contain NUL (RFC 9110 section 5.5)", "headers");
                if (text.Length > 0) text.Append('\0');
                text.Append(h.Key).Append('\0').Append(h.Value);
            }
            return Native.Utf8(text.ToString());
        }

        /// <summary>Classifies a raw HTTP response as <c>curl -i</c> saves it (status line, headers, blank line, body).</summary>
        public static Classification ClassifyRaw(byte[] raw)
        {
            return ClassifyRaw(raw, null);
        }

        /// <summary>As <see cref="ClassifyRaw(byte[])"/>, with the time a Retry-After HTTP-date is measured against.</summary>
        public static Classification ClassifyRaw(byte[] raw, DateTimeOffset? now)
        {
            if (raw == null) throw new ArgumentNullException("raw");
            Native.EnsureAbi();
            var result = new XgClassification { StructSize = Native.SizeOf<XgClassification>() };
            IntPtr json;
            Native.Ensure(NativeMethods.xg_classify_raw(raw, Native.Len(raw), UnixMs(now), ref result, out json));
            return new Classification(result, Native.TakeString(json));
        }

        // 0 asks the library to read the system clock.
        private static long UnixMs(DateTimeOffset? now)
        {
            return now.HasValue ? now.Value.ToUnixTimeMilliseconds() : 0;
        }
    }
}
