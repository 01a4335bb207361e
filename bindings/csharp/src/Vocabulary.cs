using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;

namespace XeroGuard
{
    // Codes equal the C enums of xeroguard.h; names are xero-reference §4's words in PascalCase.

    /// <summary>What kind of response this is (xero-reference §4 <c>category</c>).</summary>
    public enum Category
    {
        /// <summary>2xx with no element errors (warnings allowed).</summary>
        Success = 0,
        /// <summary>2xx batch (summarizeErrors=false) where some elements failed: see <see cref="Classification.FailedElements"/>.</summary>
        PartialSuccess = 1,
        /// <summary>The request was understood but its data is invalid: see <see cref="Classification.ValidationMessages"/>.</summary>
        ValidationError = 2,
        /// <summary>The request itself is wrong (bad query, malformed body, other 400s).</summary>
        BadRequest = 3,
        /// <summary>401: the token expired, is invalid or lacks a scope; see <see cref="Classification.AuthProblem"/>.</summary>
        Unauthorized = 4,
        /// <summary>403: not allowed, for example a tenant the user has disconnected.</summary>
        Forbidden = 5,
        /// <summary>404.</summary>
        NotFound = 6,
        /// <summary>405.</summary>
        MethodNotAllowed = 7,
        /// <summary>409.</summary>
        Conflict = 8,
        /// <summary>412.</summary>
        PreconditionFailed = 9,
        /// <summary>429, or a rate limit reported another way; see <see cref="Classification.RateLimitProblem"/>.</summary>
        RateLimited = 10,
        /// <summary>500: Xero failed.</summary>
        InternalError = 11,
        /// <summary>501.</summary>
        NotImplemented = 12,
        /// <summary>503: Xero is down or in maintenance.</summary>
        ServiceUnavailable = 13,
        /// <summary>503 for one organisation that is offline (for example being upgraded).</summary>
        OrganisationOffline = 14,
        /// <summary>Anything the reference does not describe.</summary>
        Unknown = 15,
        /// <summary>413: the batch or file is too large; split it.</summary>
        PayloadTooLarge = 16,
    }

    /// <summary>
    /// What the caller should do next (xero-reference §4 <c>action</c>). Not named <c>Action</c>, which would
    /// collide with <see cref="System.Action"/> in every file that imports <c>System</c>.
    /// </summary>
    public enum RecommendedAction
    {
        /// <summary>Nothing: the call succeeded, or failed in a way that resending cannot change.</summary>
        None = 0,
        /// <summary>Send the same request again after <see cref="Classification.RecommendedWaitMs"/>.</summary>
        Retry = 1,
        /// <summary>Refresh the access token, then resend.</summary>
        RefreshToken = 2,
        /// <summary>The user must reconnect or consent again.</summary>
        Reauthorize = 3,
        /// <summary>Do not resend the request unchanged.</summary>
        FixRequest = 4,
    }

    /// <summary>Which rate limit a 429 reports (absent, i.e. null, when not rate limited).</summary>
    public enum RateLimitProblem
    {
        /// <summary>The tenant's 60 calls per minute.</summary>
        Minute = 1,
        /// <summary>The tenant's daily limit.</summary>
        Day = 2,
        /// <summary>The app's 10,000 calls per minute across all tenants.</summary>
        AppMinute = 3,
        /// <summary>The tenant's 5 calls in flight.</summary>
        Concurrent = 4,
        /// <summary>Rate limited, but the response does not say which limit.</summary>
        Unknown = 5,
    }

    /// <summary>Why authentication or authorisation failed (null when it did not).</summary>
    public enum AuthProblem
    {
        /// <summary>The access token expired: refresh it.</summary>
        TokenExpired = 1,
        /// <summary>The access token is not valid: refresh it.</summary>
        InvalidToken = 2,
        /// <summary>The token lacks a scope the call needs: the user must consent again.</summary>
        InsufficientScope = 3,
        /// <summary>The tenant is not connected to this app (any more).</summary>
        TenantNotAuthorized = 4,
        /// <summary>Token endpoint: the refresh token or code is invalid or used.</summary>
        InvalidGrant = 5,
        /// <summary>Token endpoint: the client id or secret is wrong.</summary>
        InvalidClient = 6,
        /// <summary>Token endpoint: the grant type is not supported.</summary>
        UnsupportedGrantType = 7,
        /// <summary>OAuth 1.0a: the nonce was used before; resend with a new one.</summary>
        NonceUsed = 8,
        /// <summary>OAuth 1.0a: the signature is invalid.</summary>
        SignatureInvalid = 9,
        /// <summary>OAuth 1.0a: the signature method is not accepted.</summary>
        SignatureMethodRejected = 10,
        /// <summary>OAuth 1.0a: the token was rejected.</summary>
        TokenRejected = 11,
        /// <summary>Another authentication problem.</summary>
        Other = 12,
    }

    /// <summary>Why the limiter refused (or would refuse) a call (null when granted).</summary>
    public enum Reason
    {
        /// <summary>The tenant's minute window is full.</summary>
        Minute = 1,
        /// <summary>The tenant's day window is full.</summary>
        Day = 2,
        /// <summary>The app's minute window is full.</summary>
        AppMinute = 3,
        /// <summary>The tenant has its maximum of calls in flight.</summary>
        Concurrency = 4,
        /// <summary>The server asked to wait (Retry-After on a 429).</summary>
        RetryAfter = 5,
        /// <summary>The organisation is offline.</summary>
        OrganisationOffline = 6,
        /// <summary>Xero is unavailable.</summary>
        Outage = 7,
        /// <summary>The shared store (Redis) cannot be reached and the failure policy is <see cref="FailurePolicy.Closed"/>.</summary>
        StoreUnavailable = 8,
    }

    /// <summary>
    /// What a limiter sharing its state through a store (<see cref="RedisOptions"/>) does while the store cannot be
    /// reached; <see cref="Decision.Fallback"/> says which of them decided a call.
    /// </summary>
    public enum FailurePolicy
    {
        /// <summary>Refuse, with <see cref="Reason.StoreUnavailable"/>: never more calls than allowed (the default).</summary>
        Closed = 1,
        /// <summary>Grant, flagged: the app keeps running and risks a 429.</summary>
        Open = 2,
        /// <summary>Decide in this process with its share of every limit (the limit divided by <see cref="RedisOptions.Workers"/>).</summary>
        Local = 3,
    }

    /// <summary>Why an operation on the shared store failed (<see cref="LimiterStatistics.StoreFailures"/>).</summary>
    public enum StoreFailureKind
    {
        /// <summary>No answer within the deadline.</summary>
        Timeout = 1,
        /// <summary>The store could not be reached, or the connection broke (refused, reset, DNS, TLS).</summary>
        Connection = 2,
        /// <summary>An error reply waiting will not fix (ACL, another clock on the key prefix, a script error).</summary>
        Refused = 3,
        /// <summary>A reply the protocol does not expect.</summary>
        Protocol = 4,
    }

    /// <summary>Why <see cref="Backoff.Decide"/> or <see cref="Resend.Decide(string, bool, Classification, int, RetryPolicy)"/> gave up.</summary>
    public enum GiveUpReason
    {
        /// <summary>It did not give up: retry (the library has no word for it: <see cref="Vocabulary.Name(GiveUpReason)"/> is null).</summary>
        None = 0,
        /// <summary>The classification says resending cannot help.</summary>
        NotRetryable = 1,
        /// <summary>The policy's <see cref="RetryPolicy.MaxRetries"/> are used up.</summary>
        AttemptsExhausted = 2,
        /// <summary>The needed wait is longer than the policy's <see cref="RetryPolicy.MaxWaitMs"/>.</summary>
        WaitTooLong = 3,
        /// <summary>
        /// The server may have carried out a write (POST, PUT, PATCH) that carries no Idempotency-Key: resending could
        /// create a second record, so the outcome goes to the caller as it is (xero-reference §8).
        /// </summary>
        UnsafeToResend = 4,
    }

    /// <summary>What became of an attempt that got no HTTP response (<see cref="Resend.Decide(string, bool, TransportFailure, int, RetryPolicy)"/>).</summary>
    public enum TransportFailure
    {
        /// <summary>Nothing reached the server: connection refused, name resolution or TLS handshake failed, a connect timeout.</summary>
        NotSent = 1,
        /// <summary>The request was sent and no answer came: a timeout after sending, a reset connection, a failed read.</summary>
        NoResponse = 2,
    }

    /// <summary>The vocabulary words (xero-reference §4) of the enums, as the native library spells them.</summary>
    public static class Vocabulary
    {
        private static readonly object Lock = new object();
        private static Dictionary<string, Reason> reasons;

        // NoInlining (here and on the other small members that call the library): Mono binds a P/Invoke when the
        // method calling it is compiled, so one inlined into the caller's method would bind before that method sets
        // Library.NativeLibraryPath.

        /// <summary>The word for a category (<c>"rate_limited"</c>), or null for a code the library does not know.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static string Name(Category value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_category_name((uint)value)); }

        /// <summary>The word for an action (<c>"refresh_token"</c>), or null for a code the library does not know.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static string Name(RecommendedAction value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_action_name((uint)value)); }

        /// <summary>The word for a rate limit problem (<c>"app_minute"</c>), or null for a code the library does not know.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static string Name(RateLimitProblem value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_rate_limit_problem_name((uint)value)); }

        /// <summary>The word for an auth problem (<c>"token_expired"</c>), or null for a code the library does not know.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static string Name(AuthProblem value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_auth_problem_name((uint)value)); }

        /// <summary>The word for a limiter reason (<c>"retry_after"</c>), or null for a code the library does not know.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static string Name(Reason value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_reason_name((uint)value)); }

        /// <summary>The word for why a retry policy gave up (<c>"unsafe_to_resend"</c>); null for <see cref="GiveUpReason.None"/> and unknown codes.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static string Name(GiveUpReason value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_give_up_name((uint)value)); }

        /// <summary>The word for a failure policy (<c>"closed"</c>, <c>"open"</c>, <c>"local"</c>), or null for a code the library does not know.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static string Name(FailurePolicy value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_failure_policy_name((uint)value)); }

        /// <summary>The word for a store failure kind (<c>"timeout"</c>, <c>"connection"</c>, …), or null for a code the library does not know.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static string Name(StoreFailureKind value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_store_failure_kind_name((uint)value)); }

        // Snapshot JSON names reasons by word; the table is read from the library, not written here.
        internal static Reason? ParseReason(string word)
        {
            if (word == null) return null;
            lock (Lock)
            {
                if (reasons == null)
                {
                    var table = new Dictionary<string, Reason>(StringComparer.Ordinal);
                    foreach (Reason r in Enum.GetValues(typeof(Reason)))
                    {
                        string name = Name(r);
                        if (name != null) table[name] = r;
                    }
                    reasons = table;
                }
            }
            Reason found;
            if (reasons.TryGetValue(word, out found)) return found;
            throw new XeroGuardException("unknown limiter reason '" + word + "' from the native library");
        }
    }
}
