using System;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Security.Authentication;

namespace XeroGuard
{
    // Which exceptions from sending a request are transport failures, and of which kind, for xg_resend. Only what
    // certainly happened before the request left is NotSent (a refused connection, a failed name lookup or TLS
    // handshake); every other failure of the connection may have reached the server and is NoResponse, so a write
    // without an Idempotency-Key is never resent on a guess. Anything else (a bug, a disposed handler) is not a
    // transport failure: it reaches the caller at once.
    internal static class TransportFailures
    {
        internal static TransportFailure? Of(Exception e)
        {
            bool transport = false;
            bool afterConnecting = false; // a read or write on an open connection failed
            for (Exception x = e; x != null; x = x.InnerException)
            {
                if (x is AuthenticationException) return TransportFailure.NotSent; // the TLS handshake comes first
                var socket = x as SocketException;
                if (socket != null)
                    return !afterConnecting && BeforeSending(socket.SocketErrorCode) ? TransportFailure.NotSent : TransportFailure.NoResponse;
                var web = x as WebException; // HttpWebRequest-based handlers (.NET Framework)
                if (web != null) return BeforeSending(web.Status) ? TransportFailure.NotSent : TransportFailure.NoResponse;
                if (x is IOException) afterConnecting = true;
                // A timeout the caller's token did not cause (the handler checks that first), or a failure with no detail.
                if (x is IOException || x is HttpRequestException || x is OperationCanceledException) transport = true;
            }
            return transport ? TransportFailure.NoResponse : (TransportFailure?)null;
        }

        // Socket errors of connecting: SocketsHttpHandler raises them under HttpRequestException, while failures of an
        // open connection come wrapped in an IOException.
        private static bool BeforeSending(SocketError error)
        {
            switch (error)
            {
                case SocketError.ConnectionRefused:
                case SocketError.HostNotFound:
                case SocketError.TryAgain:
                case SocketError.NoData:
                case SocketError.HostUnreachable:
                case SocketError.HostDown:
                case SocketError.NetworkUnreachable:
                case SocketError.NetworkDown:
                case SocketError.AddressNotAvailable:
                case SocketError.AddressFamilyNotSupported:
                case SocketError.TimedOut:
                    return true;
                default:
                    return false;
            }
        }

        private static bool BeforeSending(WebExceptionStatus status)
        {
            switch (status)
            {
                case WebExceptionStatus.ConnectFailure:
                case WebExceptionStatus.NameResolutionFailure:
                case WebExceptionStatus.ProxyNameResolutionFailure:
                case WebExceptionStatus.SecureChannelFailure:
                case WebExceptionStatus.TrustFailure:
                    return true;
                default:
                    return false;
            }
        }
    }
}
