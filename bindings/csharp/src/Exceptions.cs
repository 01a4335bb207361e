using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;

namespace XeroGuard
{
    /// <summary>
    /// A failure the native library reported with an xg_status. <see cref="XeroGuardException"/> and
    /// <see cref="InvalidArgumentException"/> (an <see cref="ArgumentException"/>) both carry it, so one
    /// <c>catch (Exception e) when (e is IXeroGuardError)</c> sees every such failure.
    /// </summary>
    public interface IXeroGuardError
    {
        /// <summary>The xg_status code (-1 for errors raised by the binding itself).</summary>
        int Status { get; }

        /// <summary>The library's name for the status (<c>"invalid_argument"</c>, …).</summary>
        string StatusName { get; }
    }

    /// <summary>A call into the native library failed. <see cref="Status"/> is the xg_status code.</summary>
    public class XeroGuardException : Exception, IXeroGuardError
    {
        /// <summary>A failure the library reported: its status code, the code's name and the library's message.</summary>
        public XeroGuardException(int status, string statusName, string message)
            : base(message)
        {
            Status = status;
            StatusName = statusName;
        }

        /// <summary>A failure found by the binding itself (<see cref="Status"/> -1, <see cref="StatusName"/> "binding").</summary>
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
        /// <summary>Says which versions were found and needed.</summary>
        public AbiMismatchException(string message) : base(message) { }
    }

    /// <summary>
    /// The native library could not be loaded. The message lists where it was looked for and how to fix it; it is a
    /// <see cref="DllNotFoundException"/>, so code that already catches that keeps working.
    /// </summary>
    public sealed class XeroGuardLoadException : DllNotFoundException
    {
        /// <summary>A load failure: the full explanation, the places looked at, the setting in force and the runtime's own error.</summary>
        public XeroGuardLoadException(string message, IEnumerable<string> placesLooked, string nativeLibraryPath,
            Exception innerException)
            : base(message, innerException)
        {
            PlacesLooked = new ReadOnlyCollection<string>(new List<string>(placesLooked ?? new string[0]));
            NativeLibraryPath = nativeLibraryPath;
        }

        /// <summary>The files and directories where the library was looked for, each marked found or not found.</summary>
        public IReadOnlyList<string> PlacesLooked { get; private set; }

        /// <summary>The <see cref="Library.NativeLibraryPath"/> in force (null: the runtime's usual search).</summary>
        public string NativeLibraryPath { get; private set; }
    }

    /// <summary>Text the library needs as UTF-8 was not (XG_STATUS_INVALID_UTF8).</summary>
    public sealed class InvalidUtf8Exception : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public InvalidUtf8Exception(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>
    /// An argument was out of range, e.g. a bad limit or a clock moved backwards (XG_STATUS_INVALID_ARGUMENT).
    /// It is an <see cref="ArgumentException"/>, as .NET code expects of a bad argument, so
    /// <c>catch (XeroGuardException)</c> does not catch it; it carries the same <see cref="Status"/> and
    /// <see cref="StatusName"/> (<see cref="IXeroGuardError"/>).
    /// </summary>
    public sealed class InvalidArgumentException : ArgumentException, IXeroGuardError
    {
        /// <summary>The library's status, its name and message.</summary>
        public InvalidArgumentException(int status, string name, string message)
            : base(message)
        {
            Status = status;
            StatusName = name;
        }

        /// <summary>The xg_status code (3).</summary>
        public int Status { get; private set; }

        /// <summary>The library's name for the status ("invalid_argument").</summary>
        public string StatusName { get; private set; }
    }

    /// <summary>A raw response had no parsable status line (XG_STATUS_MALFORMED_RESPONSE).</summary>
    public sealed class MalformedResponseException : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public MalformedResponseException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>An input exceeded a documented cap: header count, header or tenant id length (XG_STATUS_TOO_LARGE).</summary>
    public sealed class TooLargeException : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public TooLargeException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>The permit is not held: already released, expired, or never granted (XG_STATUS_UNKNOWN_PERMIT).</summary>
    public sealed class UnknownPermitException : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public UnknownPermitException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>The reservation is not pending (XG_STATUS_UNKNOWN_RESERVATION).</summary>
    public sealed class UnknownReservationException : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public UnknownReservationException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>The limiter tracks its maximum number of tenants and none is idle (XG_STATUS_TOO_MANY_TENANTS).</summary>
    public sealed class TooManyTenantsException : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public TooManyTenantsException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>The operation needs a manual clock (XG_STATUS_WRONG_CLOCK).</summary>
    public sealed class WrongClockException : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public WrongClockException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>
    /// A wait for a permit was ended by <see cref="Limiter.Interrupt"/>: the limiter is shutting down
    /// (XG_STATUS_INTERRUPTED). It is an <see cref="OperationCanceledException"/>, as .NET code expects of work
    /// stopped at shutdown, so a worker loop that already stops on cancellation stops on it too; catch this type to tell
    /// it from a cancelled token. It carries <see cref="Status"/> and <see cref="StatusName"/> (<see cref="IXeroGuardError"/>).
    /// </summary>
    public sealed class LimiterInterruptedException : OperationCanceledException, IXeroGuardError
    {
        /// <summary>The library's status, its name and message.</summary>
        public LimiterInterruptedException(int status, string name, string message)
            : base(message)
        {
            Status = status;
            StatusName = name;
        }

        /// <summary>The xg_status code (11).</summary>
        public int Status { get; private set; }

        /// <summary>The library's name for the status ("interrupted").</summary>
        public string StatusName { get; private set; }
    }

    /// <summary>A reservation's slot lies beyond the booking horizon, about 24.8 days ahead (XG_STATUS_BOOKING_TOO_FAR).</summary>
    public sealed class BookingTooFarException : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public BookingTooFarException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>
    /// The shared store (Redis) of a limiter made with <see cref="RedisOptions"/> failed: it answered with an error,
    /// for example an ACL refusal or a key prefix that runs on another clock (XG_STATUS_STORE_ERROR). Its subclass
    /// <see cref="StoreUnavailableException"/> is a store that could not be reached, so <c>catch (StoreException)</c>
    /// sees both.
    /// </summary>
    public class StoreException : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public StoreException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>
    /// A struct handed to the library set a field the loaded library does not know: the binding is newer than its
    /// library (XG_STATUS_UNKNOWN_FIELDS). Use the library the binding came with.
    /// </summary>
    public sealed class UnknownFieldsException : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public UnknownFieldsException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>
    /// The shared store could not be reached within <see cref="RedisOptions.Deadline"/>, and no failure policy decided
    /// instead: creating the limiter, for example (XG_STATUS_STORE_UNAVAILABLE).
    /// </summary>
    public sealed class StoreUnavailableException : StoreException
    {
        /// <summary>The library's status, its name and message.</summary>
        public StoreUnavailableException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>
    /// The shared store did not accept the credentials (WRONGPASS, NOAUTH): fix the user and password in the store
    /// URL, <c>redis://user:password@host:port</c> (XG_STATUS_STORE_AUTH).
    /// </summary>
    public sealed class StoreAuthException : StoreException
    {
        /// <summary>The library's status, its name and message.</summary>
        public StoreAuthException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>
    /// The shared store's ACL does not allow a command the limiter needs (NOPERM, an unknown or renamed command): give
    /// the URL's user the commands the README's Redis section lists (XG_STATUS_STORE_FORBIDDEN).
    /// </summary>
    public sealed class StoreForbiddenException : StoreException
    {
        /// <summary>The library's status, its name and message.</summary>
        public StoreForbiddenException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>
    /// The limits given differ from those stored for the key prefix; the message names both (XG_STATUS_LIMITS_DIFFER).
    /// Set <see cref="RedisOptions.ReplaceLimits"/> to store the given ones for every process, or
    /// <see cref="RedisOptions.AdoptStoredLimits"/> to pace by the stored ones.
    /// </summary>
    public sealed class LimitsDifferException : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public LimitsDifferException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>A read-only look at a key prefix that holds no limits (XG_STATUS_NO_STORED_LIMITS).</summary>
    public sealed class NoStoredLimitsException : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public NoStoredLimitsException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>A panic inside the library was caught at the boundary; the library stays usable (XG_STATUS_PANIC).</summary>
    public sealed class NativePanicException : XeroGuardException
    {
        /// <summary>The library's status, its name and message.</summary>
        public NativePanicException(int status, string name, string message) : base(status, name, message) { }
    }

    /// <summary>
    /// The limiter gave up a wait: the call would certainly wait beyond the timeout the caller allowed (for example
    /// a day limit that resets in hours), or the timeout passed; thrown instead of sleeping through it. The library
    /// decides when (xg_limiter_acquire_until).
    /// </summary>
    public sealed class RateLimitWaitTooLongException : XeroGuardException
    {
        /// <summary>The tenant, the last wait the limiter asked for and why, and the timeout the caller allowed.</summary>
        public RateLimitWaitTooLongException(string tenantId, TimeSpan wait, Reason? reason, TimeSpan maxWait)
            : base(string.Format("no permit for tenant '{0}' within {1}: {2}", tenantId ?? "",
                Native.DurationWords(Native.DurationMs(maxWait < TimeSpan.Zero ? TimeSpan.Zero : maxWait)),
                reason.HasValue ? Native.RefusalWords(reason.Value, Native.DurationMs(wait))
                    : Native.DurationWords(Native.DurationMs(wait)) + " more"))
        {
            TenantId = tenantId;
            Wait = wait;
            Reason = reason;
        }

        /// <summary>The tenant whose call was refused (null for a tenantless call).</summary>
        public string TenantId { get; private set; }
        /// <summary>How long the limiter said the call must wait.</summary>
        public TimeSpan Wait { get; private set; }
        /// <summary>Why it must wait (the day limit, a Retry-After, …).</summary>
        public Reason? Reason { get; private set; }
    }
}
