using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace XeroGuard
{
    // Reads what the library's body rule asks for (xg_body_bytes_to_classify: every error body; a JSON, XML or text
    // 2xx up to 1 MiB; nothing of a download) and classifies the response from it. Whatever was read stays readable:
    // a body that ended within the limit becomes the response's content, a longer one is handed on as the part read
    // followed by the rest, unread.
    internal static class ResponseBody
    {
        private const int ChunkBytes = 16 * 1024;
        private static readonly byte[] None = new byte[0];

        internal static async Task<Classification> ClassifyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
        {
            byte[] body = await ReadAsync(response, cancellationToken).ConfigureAwait(false);
            return Classifier.Classify((int)response.StatusCode, Headers(response), body);
        }

        // The library's answer for this status and Content-Type.
        [MethodImpl(MethodImplOptions.NoInlining)] // see Vocabulary.Name
        internal static long BytesToClassify(int status, string contentType)
        {
            if (status < 0 || status > ushort.MaxValue)
                throw new ArgumentOutOfRangeException(nameof(status), status, "an HTTP status fits in 16 bits");
            Native.EnsureAbi();
            byte[] type = contentType == null ? null : Encoding.UTF8.GetBytes(contentType);
            ulong bytes;
            Native.Ensure(NativeMethods.xg_body_bytes_to_classify((ushort)status, type, Native.Len(type), out bytes));
            return Native.ClampToLong(bytes);
        }

        private static async Task<byte[]> ReadAsync(HttpResponseMessage response, CancellationToken cancellationToken)
        {
            HttpContent content = response.Content;
            if (content == null) return None;
            IEnumerable<string> types;
            string contentType = content.Headers.TryGetValues("Content-Type", out types) ? types.FirstOrDefault() : null;
            long wanted = BytesToClassify((int)response.StatusCode, contentType);
            long? length = content.Headers.ContentLength;
            if (wanted == 0 || length == 0) return None;
            if (length.HasValue && length.Value <= wanted)
            {
                await content.LoadIntoBufferAsync().ConfigureAwait(false); // the caller can still read it
                return await content.ReadAsByteArrayAsync().ConfigureAwait(false);
            }
            return await ReadPrefixAsync(response, wanted, cancellationToken).ConfigureAwait(false);
        }

        // A body longer than the limit, or of unknown length (chunked, decompressed): read at most the limit plus one
        // byte. If it ended, the response gets the bytes as its content; otherwise the part read followed by the rest,
        // unread, and the classification reads the limit's worth.
        private static async Task<byte[]> ReadPrefixAsync(HttpResponseMessage response, long limit, CancellationToken cancellationToken)
        {
            HttpContent original = response.Content;
            Stream stream = await original.ReadAsStreamAsync().ConfigureAwait(false);
            var prefix = new MemoryStream();
            var chunk = new byte[ChunkBytes];
            bool ended = false;
            while (prefix.Length <= limit)
            {
                int wanted = (int)Math.Min(chunk.Length, limit + 1 - prefix.Length);
                int n = await stream.ReadAsync(chunk, 0, wanted, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    ended = true;
                    break;
                }
                prefix.Write(chunk, 0, n);
            }
            byte[] read = prefix.ToArray();
            if (ended)
            {
                response.Content = WithHeadersOf(original, new ByteArrayContent(read));
                original.Dispose();
                return read;
            }
            response.Content = WithHeadersOf(original, new StreamContent(new PrefixedStream(read, stream)));
            var classified = new byte[limit];
            Buffer.BlockCopy(read, 0, classified, 0, classified.Length);
            return classified;
        }

        private static HttpContent WithHeadersOf(HttpContent original, HttpContent replacement)
        {
            foreach (var header in original.Headers)
                replacement.Headers.TryAddWithoutValidation(header.Key, header.Value);
            return replacement;
        }

        // One (name, value) pair per value; the library matches names case-insensitively.
        private static IEnumerable<KeyValuePair<string, string>> Headers(HttpResponseMessage response)
        {
            var all = response.Headers.AsEnumerable();
            if (response.Content != null) all = all.Concat(response.Content.Headers);
            foreach (var h in all)
                foreach (var v in h.Value)
                    yield return new KeyValuePair<string, string>(h.Key, v);
        }
    }

    // The bytes already read, then the rest of the original stream: a body handed on after a bounded look.
    internal sealed class PrefixedStream : Stream
    {
        private readonly byte[] prefix;
        private readonly Stream rest;
        private int position;

        internal PrefixedStream(byte[] prefix, Stream rest)
        {
            this.prefix = prefix;
            this.rest = rest;
        }

        public override bool CanRead { get { return true; } }
        public override bool CanSeek { get { return false; } }
        public override bool CanWrite { get { return false; } }
        public override long Length { get { throw new NotSupportedException(); } }

        public override long Position
        {
            get { throw new NotSupportedException(); }
            set { throw new NotSupportedException(); }
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (position < prefix.Length) return ReadPrefix(buffer, offset, count);
            return rest.Read(buffer, offset, count);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            if (position < prefix.Length) return Task.FromResult(ReadPrefix(buffer, offset, count));
            return rest.ReadAsync(buffer, offset, count, cancellationToken);
        }

        private int ReadPrefix(byte[] buffer, int offset, int count)
        {
            int n = Math.Min(count, prefix.Length - position);
            Buffer.BlockCopy(prefix, position, buffer, offset, n);
            position += n;
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) { throw new NotSupportedException(); }
        public override void SetLength(long value) { throw new NotSupportedException(); }
        public override void Write(byte[] buffer, int offset, int count) { throw new NotSupportedException(); }

        protected override void Dispose(bool disposing)
        {
            if (disposing) rest.Dispose();
            base.Dispose(disposing);
        }
    }
}
