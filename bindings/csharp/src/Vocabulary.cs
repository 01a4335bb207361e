using System;
using System.Collections.Generic;

namespace XeroGuard
{
    // Codes equal the C enums of xeroguard.h; names are xero-reference §4's words in PascalCase.

    /// <summary>What kind of response this is.</summary>
    public enum Category
    {
        Success = 0,
        PartialSuccess = 1,
        ValidationError = 2,
        BadRequest = 3,
        Unauthorized = 4,
        Forbidden = 5,
        NotFound = 6,
        MethodNotAllowed = 7,
        Conflict = 8,
        PreconditionFailed = 9,
        RateLimited = 10,
        InternalError = 11,
        NotImplemented = 12,
        ServiceUnavailable = 13,
        OrganisationOffline = 14,
        Unknown = 15,
        PayloadTooLarge = 16,
    }

    /// <summary>What the caller should do next.</summary>
    public enum Action
    {
        None = 0,
        Retry = 1,
        RefreshToken = 2,
        Reauthorize = 3,
        FixRequest = 4,
    }

    /// <summary>Which rate limit a 429 reports (absent, i.e. null, when not rate limited).</summary>
    public enum RateLimitProblem
    {
        Minute = 1,
        Day = 2,
        AppMinute = 3,
        Concurrent = 4,
        Unknown = 5,
    }

    /// <summary>Why authentication or authorisation failed (null when it did not).</summary>
    public enum AuthProblem
    {
        TokenExpired = 1,
        InvalidToken = 2,
        InsufficientScope = 3,
        TenantNotAuthorized = 4,
        InvalidGrant = 5,
        InvalidClient = 6,
        UnsupportedGrantType = 7,
        NonceUsed = 8,
        SignatureInvalid = 9,
        SignatureMethodRejected = 10,
        TokenRejected = 11,
        Other = 12,
    }

    /// <summary>Why the limiter refused (or would refuse) a call (null when granted).</summary>
    public enum Reason
    {
        Minute = 1,
        Day = 2,
        AppMinute = 3,
        Concurrency = 4,
        RetryAfter = 5,
        OrganisationOffline = 6,
        Outage = 7,
    }

    /// <summary>Why <see cref="Backoff.Decide"/> gave up.</summary>
    public enum GiveUpReason
    {
        None = 0,
        NotRetryable = 1,
        AttemptsExhausted = 2,
        WaitTooLong = 3,
    }

    /// <summary>The vocabulary words (xero-reference §4) of the enums, as the native library spells them.</summary>
    public static class Vocabulary
    {
        private static readonly object Lock = new object();
        private static Dictionary<string, Reason> reasons;

        public static string Name(Category value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_category_name((uint)value)); }
        public static string Name(Action value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_action_name((uint)value)); }
        public static string Name(RateLimitProblem value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_rate_limit_problem_name((uint)value)); }
        public static string Name(AuthProblem value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_auth_problem_name((uint)value)); }
        public static string Name(Reason value) { Native.EnsureAbi(); return Native.StaticString(NativeMethods.xg_reason_name((uint)value)); }

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
