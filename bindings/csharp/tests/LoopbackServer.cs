using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;

namespace XeroGuard.Tests
{
    // A loopback HTTP/1.1 server on a raw socket that logs every request it reads and answers each from a script:
    // a response, or a reset of the connection after the request was read (what a dropped answer looks like to the
    // client). One request per connection (it answers Connection: close). Request bodies need a Content-Length, which
    // the handler's buffered content always has.
    internal sealed class LoopbackServer : IDisposable
    {
        internal sealed class Request
        {
            public string Method;
            public string Path;
            public Dictionary<string, string> Headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            public string Body;

            public string Header(string name)
            {
                string value;
                return Headers.TryGetValue(name, out value) ? value : null;
            }
        }

        internal sealed class Reply
        {
            public int Status;
            public string[] Headers = new string[0];
            public string Body = "";
            public bool Reset;

            public static Reply With(int status, params string[] headers) { return new Reply { Status = status, Headers = headers }; }
            public static Reply ResetConnection() { return new Reply { Reset = true }; }
        }

        private readonly TcpListener listener;
        private readonly Func<int, Request, Reply> script;
        private readonly Thread acceptor;
        private readonly List<Request> requests = new List<Request>();
        private volatile bool stopping;

        // script(n, request): the answer to the n-th request (1-based).
        public LoopbackServer(Func<int, Request, Reply> script)
        {
            this.script = script;
            listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            Url = "http://127.0.0.1:" + ((IPEndPoint)listener.LocalEndpoint).Port;
            acceptor = new Thread(AcceptLoop) { IsBackground = true, Name = "loopback-server" };
            acceptor.Start();
        }

        public string Url { get; private set; }

        public List<Request> Requests
        {
            get { lock (requests) return requests.ToList(); }
        }

        public void Dispose()
        {
            stopping = true;
            listener.Stop();
            acceptor.Join(5000);
        }

        private void AcceptLoop()
        {
            while (!stopping)
            {
                TcpClient client;
                try
                {
                    client = listener.AcceptTcpClient();
                }
                catch (SocketException)
                {
                    return; // stopped
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                ThreadPool.QueueUserWorkItem(_ => Serve(client));
            }
        }

        private void Serve(TcpClient client)
        {
            using (client)
            {
                try
                {
                    NetworkStream stream = client.GetStream();
                    Request request = Read(stream);
                    if (request == null) return;
                    int n;
                    lock (requests)
                    {
                        requests.Add(request);
                        n = requests.Count;
                    }
                    Reply reply = script(n, request);
                    if (reply.Reset)
                    {
                        client.LingerState = new LingerOption(true, 0); // close with RST, no answer
                        return;
                    }
                    byte[] body = Encoding.UTF8.GetBytes(reply.Body ?? "");
                    var head = new StringBuilder();
                    head.AppendFormat("HTTP/1.1 {0} Status\r\n", reply.Status);
                    for (int i = 0; i + 1 < reply.Headers.Length; i += 2) head.AppendFormat("{0}: {1}\r\n", reply.Headers[i], reply.Headers[i + 1]);
                    head.AppendFormat("Content-Length: {0}\r\nConnection: close\r\n\r\n", body.Length);
                    byte[] headBytes = Encoding.ASCII.GetBytes(head.ToString());
                    stream.Write(headBytes, 0, headBytes.Length);
                    stream.Write(body, 0, body.Length);
                    stream.Flush();
                }
                catch (IOException) { }
                catch (SocketException) { }
            }
        }

        private static Request Read(Stream stream)
        {
            var head = new MemoryStream();
            int matched = 0;
            while (matched < 4)
            {
                int b = stream.ReadByte();
                if (b < 0) return null;
                head.WriteByte((byte)b);
                matched = (b == (matched % 2 == 0 ? '\r' : '\n')) ? matched + 1 : (b == '\r' ? 1 : 0);
            }
            string[] lines = Encoding.ASCII.GetString(head.ToArray()).Split(new[] { "\r\n" }, StringSplitOptions.None);
            string[] first = lines[0].Split(' ');
            var request = new Request { Method = first[0], Path = first[1] };
            foreach (string line in lines.Skip(1).Where(l => l.Length > 0))
            {
                int colon = line.IndexOf(':');
                request.Headers[line.Substring(0, colon).Trim()] = line.Substring(colon + 1).Trim();
            }
            if (request.Header("Transfer-Encoding") != null) throw new IOException("chunked request bodies are not supported here");
            int length = int.Parse(request.Header("Content-Length") ?? "0");
            var body = new byte[length];
            int read = 0;
            while (read < length)
            {
                int n = stream.Read(body, read, length - read);
                if (n == 0) return null;
                read += n;
            }
            request.Body = Encoding.UTF8.GetString(body);
            return request;
        }
    }
}
