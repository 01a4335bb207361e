using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace XeroGuard
{
    /// <summary>Classifies Xero responses through the native library (xg_classify, xg_classify_raw).</summary>
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

            // All header text goes into one UTF-8 blob, pinned once, with (offset, length) pairs into it.
            var spans = new List<int>();
            var blob = new List<byte>();
            if (headers != null)
            {
                foreach (var h in headers)
                {
                    if (h.Key == null) throw new ArgumentException("a header name is null", "headers");
                    foreach (var text in new[] { h.Key, h.Value })
                    {
                        byte[] bytes = Native.Utf8(text) ?? new byte[0];
                        spans.Add(blob.Count);
                        spans.Add(bytes.Length);
                        blob.AddRange(bytes);
                    }
                }
            }
            byte[] blobArray = blob.ToArray();
            var nativeHeaders = new XgHeader[spans.Count / 4];
            if (body == null) body = new byte[0];

            GCHandle blobPin = GCHandle.Alloc(blobArray, GCHandleType.Pinned);
            GCHandle headersPin = GCHandle.Alloc(nativeHeaders, GCHandleType.Pinned);
            GCHandle bodyPin = GCHandle.Alloc(body, GCHandleType.Pinned);
            try
            {
                IntPtr blobPtr = blobPin.AddrOfPinnedObject();
                for (int i = 0; i < nativeHeaders.Length; i++)
                {
                    nativeHeaders[i].Name = IntPtr.Add(blobPtr, spans[4 * i]);
                    nativeHeaders[i].NameLen = (UIntPtr)spans[4 * i + 1];
                    nativeHeaders[i].Value = IntPtr.Add(blobPtr, spans[4 * i + 2]);
                    nativeHeaders[i].ValueLen = (UIntPtr)spans[4 * i + 3];
                }
                var response = new XgResponse
                {
                    Status = (ushort)status,
                    Headers = nativeHeaders.Length == 0 ? IntPtr.Zero : headersPin.AddrOfPinnedObject(),
                    HeaderCount = (UIntPtr)nativeHeaders.Length,
                    Body = body.Length == 0 ? IntPtr.Zero : bodyPin.AddrOfPinnedObject(),
                    BodyLen = (UIntPtr)body.Length,
                    NowUnixMs = UnixMs(now),
                };
                var result = new XgClassification { StructSize = Native.SizeOf<XgClassification>() };
                IntPtr json;
                Native.Ensure(NativeMethods.xg_classify(ref response, ref result, out json));
                return new Classification(result, Native.TakeString(json));
            }
            finally
            {
                bodyPin.Free();
                headersPin.Free();
                blobPin.Free();
            }
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
