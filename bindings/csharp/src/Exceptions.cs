using System;

namespace XeroGuard
{
    /// <summary>A call into the native library failed. <see cref="Status"/> is the xg_status code.</summary>
    public class XeroGuardException : Exception
    {
        public XeroGuardException(int status, string statusName, string message)
            : base(message)
        {
            Status = status;
            StatusName = statusName;
        }

        public XeroGuardException(string message) : base(message)
        {
            Status = -1;
            StatusName = "binding";
        }

        /// <summary>The xg_status code (-1 for errors raised by the binding itself).</summary>
        public int Status { get; private set; }

        /// <summary>The library's name for the status ("invalid_argument", …).</summary>
        public string StatusName { get; private set; }
    }

    /// <summary>The loaded native library speaks a different ABI version than this binding.</summary>
    public sealed class AbiMismatchException : XeroGuardException
    {
        public AbiMismatchException(string message) : base(message) { }
    }

    /// <summary>Text the library needs as UTF-8 was not (XG_STATUS_INVALID_UTF8).</summary>
    public sealed class InvalidUtf8Exception : XeroGuardException
    {
        public InvalidUtf8Exception(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>An argument was out of range, e.g. a bad limit or a clock moved backwards (XG_STATUS_INVALID_ARGUMENT).</summary>
    public sealed class InvalidArgumentException : XeroGuardException
    {
        public InvalidArgumentException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>A raw response had no parsable status line (XG_STATUS_MALFORMED_RESPONSE).</summary>
    public sealed class MalformedResponseException : XeroGuardException
    {
        public MalformedResponseException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>An input exceeded a documented cap: header count, header or tenant id length (XG_STATUS_TOO_LARGE).</summary>
    public sealed class TooLargeException : XeroGuardException
    {
        public TooLargeException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>The permit is not held: already released, expired, or never granted (XG_STATUS_UNKNOWN_PERMIT).</summary>
    public sealed class UnknownPermitException : XeroGuardException
    {
        public UnknownPermitException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>The reservation is not pending (XG_STATUS_UNKNOWN_RESERVATION).</summary>
    public sealed class UnknownReservationException : XeroGuardException
    {
        public UnknownReservationException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>The limiter tracks its maximum number of tenants and none is idle (XG_STATUS_TOO_MANY_TENANTS).</summary>
    public sealed class TooManyTenantsException : XeroGuardException
    {
        public TooManyTenantsException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>The operation needs a manual clock (XG_STATUS_WRONG_CLOCK).</summary>
    public sealed class WrongClockException : XeroGuardException
    {
        public WrongClockException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>A panic inside the library was caught at the boundary; the library stays usable (XG_STATUS_PANIC).</summary>
    public sealed class NativePanicException : XeroGuardException
    {
        public NativePanicException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>
    /// The limiter says the next call must wait longer than the caller allowed (for example a day limit that
    /// resets in hours); thrown instead of sleeping through it.
    /// </summary>
    public sealed class RateLimitWaitTooLongException : XeroGuardException
    {
        public RateLimitWaitTooLongException(string tenantId, TimeSpan wait, Reason? reason, TimeSpan maxWait)
            : base(string.Format("tenant '{0}' must wait {1} ms ({2}), longer than the allowed {3} ms",
                tenantId ?? "", (long)wait.TotalMilliseconds, reason.HasValue ? Vocabulary.Name(reason.Value) : "unknown",
                (long)maxWait.TotalMilliseconds))
        {
            TenantId = tenantId;
            Wait = wait;
            Reason = reason;
        }

        public string TenantId { get; private set; }
        public TimeSpan Wait { get; private set; }
        public Reason? Reason { get; private set; }
    }
}
