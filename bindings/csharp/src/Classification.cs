using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.IO;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Text;

namespace XeroGuard
{
    /// <summary>
    /// What a Xero response means (xero-reference §5), as decided by the native library. Immutable.
    /// Unknown values are null.
    /// </summary>
    public sealed class Classification
    {
        private static readonly DataContractJsonSerializer Serializer = new DataContractJsonSerializer(typeof(ClassificationJson));
        private static readonly ReadOnlyCollection<string> NoStrings = new ReadOnlyCollection<string>(new string[0]);
        private static readonly ReadOnlyCollection<int> NoInts = new ReadOnlyCollection<int>(new int[0]);

        // Kept so Limiter.Observe and Backoff hand the library exactly what it produced.
        internal readonly XgClassification Native;

        internal Classification(XgClassification native, byte[] json)
        {
            Native = native;
            Json = Encoding.UTF8.GetString(json);
            ClassificationJson j;
            using (var stream = new MemoryStream(json, false))
            {
                j = (ClassificationJson)Serializer.ReadObject(stream);
            }
            // Enums come from the struct's codes; everything else from the JSON form, which carries all of §5.
            Status = native.Status;
            Category = (Category)native.Category;
            Action = (RecommendedAction)native.Action;
            Retryable = native.Retryable == 1;
            MayHaveBeenProcessed = native.MayHaveBeenProcessed != 0;
            RateLimitProblem = native.RateLimitProblem == 0 ? (RateLimitProblem?)null : (RateLimitProblem)native.RateLimitProblem;
            AuthProblem = native.AuthProblem == 0 ? (AuthProblem?)null : (AuthProblem)native.AuthProblem;
            RetryAfterMs = j.RetryAfterMs;
            RecommendedWaitMs = j.RecommendedWaitMs;
            MinuteRemaining = j.MinuteRemaining;
            DayRemaining = j.DayRemaining;
            AppMinuteRemaining = j.AppMinuteRemaining;
            ErrorNumber = j.ErrorNumber;
            ErrorType = j.ErrorType;
            Message = j.Message;
            ValidationMessages = ReadOnly(j.ValidationMessages);
            Warnings = ReadOnly(j.Warnings);
            FailedElements = j.FailedElements == null || j.FailedElements.Count == 0 ? NoInts : new ReadOnlyCollection<int>(j.FailedElements.ToArray());
            OAuthProblem = j.OAuthProblem;
            OAuthProblemAdvice = j.OAuthProblemAdvice;
            ProblemTitle = j.ProblemTitle;
            ProblemDetail = j.ProblemDetail;
            CorrelationId = j.CorrelationId;
        }

        private static ReadOnlyCollection<string> ReadOnly(List<string> list)
        {
            return list == null || list.Count == 0 ? NoStrings : new ReadOnlyCollection<string>(list.ToArray());
        }

        /// <summary>The HTTP status given.</summary>
        public int Status { get; private set; }
        /// <summary>What kind of response this is.</summary>
        public Category Category { get; private set; }
        /// <summary>What the caller should do next.</summary>
        public RecommendedAction Action { get; private set; }
        /// <summary>True exactly when <see cref="Action"/> is <see cref="RecommendedAction.Retry"/>.</summary>
        public bool Retryable { get; private set; }
        /// <summary>
        /// True when the server may have carried the request out (a 500, 502, 504, other 5xx, a Finance request
        /// timeout, and every result that is not retryable); false when it certainly did not (a 429, an offline
        /// organisation, maintenance, an OAuth1 nonce_used). <see cref="Resend"/> reads it (xero-reference §8).
        /// </summary>
        public bool MayHaveBeenProcessed { get; private set; }
        /// <summary>Which rate limit was hit; null when not rate limited.</summary>
        public RateLimitProblem? RateLimitProblem { get; private set; }
        /// <summary>Why authentication or authorisation failed; null when it did not.</summary>
        public AuthProblem? AuthProblem { get; private set; }
        /// <summary>From Retry-After (seconds or HTTP-date), capped at one day.</summary>
        public long? RetryAfterMs { get; private set; }
        /// <summary>How long to wait before retrying: 0 for success, null when the action is not retry.</summary>
        public long? RecommendedWaitMs { get; private set; }
        /// <summary>Calls left in the tenant's minute (<c>X-MinLimit-Remaining</c>).</summary>
        public long? MinuteRemaining { get; private set; }
        /// <summary>Calls left in the tenant's day (<c>X-DayLimit-Remaining</c>).</summary>
        public long? DayRemaining { get; private set; }
        /// <summary>Calls left in the app's minute (<c>X-AppMinLimit-Remaining</c>).</summary>
        public long? AppMinuteRemaining { get; private set; }
        /// <summary>The body's <c>ErrorNumber</c> (Xero's ApiException).</summary>
        public long? ErrorNumber { get; private set; }
        /// <summary>The body's error type, e.g. <c>ValidationException</c>.</summary>
        public string ErrorType { get; private set; }
        /// <summary>The body's human-readable error text (for problem bodies, the detail or title).</summary>
        public string Message { get; private set; }
        /// <summary>Every validation message in the body, in document order, duplicates dropped.</summary>
        public IReadOnlyList<string> ValidationMessages { get; private set; }
        /// <summary>Every warning message in the body, in document order, duplicates dropped.</summary>
        public IReadOnlyList<string> Warnings { get; private set; }
        /// <summary>For partial success: 0-based indexes of the elements that failed.</summary>
        public IReadOnlyList<int> FailedElements { get; private set; }
        /// <summary>The OAuth 1.0a style <c>oauth_problem</c> field, decoded.</summary>
        public string OAuthProblem { get; private set; }
        /// <summary>The OAuth 1.0a style <c>oauth_problem_advice</c> field, decoded.</summary>
        public string OAuthProblemAdvice { get; private set; }
        /// <summary>The title of a problem-shaped body.</summary>
        public string ProblemTitle { get; private set; }
        /// <summary>The detail of a problem-shaped body.</summary>
        public string ProblemDetail { get; private set; }
        /// <summary>The <c>Xero-Correlation-Id</c> header, else the problem body's <c>Instance</c>; quote it to Xero support.</summary>
        public string CorrelationId { get; private set; }

        /// <summary>The library's full JSON form (xero-reference §5).</summary>
        public string Json { get; private set; }

        /// <summary><see cref="RecommendedWaitMs"/> as a TimeSpan.</summary>
        public TimeSpan? RecommendedWait
        {
            get { return RecommendedWaitMs.HasValue ? TimeSpan.FromMilliseconds(RecommendedWaitMs.Value) : (TimeSpan?)null; }
        }

        /// <summary>The library's JSON form, as <see cref="Json"/>.</summary>
        public override string ToString()
        {
            return Json;
        }

        [DataContract]
        private sealed class ClassificationJson
        {
            [DataMember(Name = "retry_after_ms")] public long? RetryAfterMs = null;
            [DataMember(Name = "recommended_wait_ms")] public long? RecommendedWaitMs = null;
            [DataMember(Name = "minute_remaining")] public long? MinuteRemaining = null;
            [DataMember(Name = "day_remaining")] public long? DayRemaining = null;
            [DataMember(Name = "app_minute_remaining")] public long? AppMinuteRemaining = null;
            [DataMember(Name = "error_number")] public long? ErrorNumber = null;
            [DataMember(Name = "error_type")] public string ErrorType = null;
            [DataMember(Name = "message")] public string Message = null;
            [DataMember(Name = "validation_messages")] public List<string> ValidationMessages = null;
            [DataMember(Name = "warnings")] public List<string> Warnings = null;
            [DataMember(Name = "failed_elements")] public List<int> FailedElements = null;
            [DataMember(Name = "oauth_problem")] public string OAuthProblem = null;
            [DataMember(Name = "oauth_problem_advice")] public string OAuthProblemAdvice = null;
            [DataMember(Name = "problem_title")] public string ProblemTitle = null;
            [DataMember(Name = "problem_detail")] public string ProblemDetail = null;
            [DataMember(Name = "correlation_id")] public string CorrelationId = null;
        }
    }
}
