using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace XeroGuard.Tests
{
    internal static class ApiTests
    {
        private static KeyValuePair<string, string> H(string name, string value)
        {
            return new KeyValuePair<string, string>(name, value);
        }

        internal static string Snake(string pascal)
        {
            return Regex.Replace(pascal, "(?<=[a-z0-9])([A-Z])", "_$1").ToLowerInvariant();
        }

        public static void Register(Runner r, string shared)
        {
            r.Run("library/version_and_abi", () =>
            {
                Assert.Equal(3, Library.AbiVersion, "xg_abi_version");
                Assert.Equal(Library.RequiredAbiVersion, Library.AbiVersion, "the binding speaks the library's ABI");
                Assert.True(Regex.IsMatch(Library.Version, @"^\d+\.\d+\.\d+"), "version looks like x.y.z: " + Library.Version);
            });

            r.Run("library/used_only_when_it_serves_this_binding", () =>
            {
                // Native.Refusal (internal): what the first call checks before anything crosses.
                MethodInfo refusal = typeof(Library).Assembly.GetType("XeroGuard.Native")
                    .GetMethod("Refusal", BindingFlags.NonPublic | BindingFlags.Static);
                Func<string, uint, uint, string> why = (version, abi, oldest) =>
                    (string)refusal.Invoke(null, new object[] { version, abi, oldest });
                string own = Library.Version;
                uint needed = (uint)Library.RequiredAbiVersion;
                Assert.Equal(null, why(own, needed, needed), "the library it came with");
                Assert.Equal(null, why("99.0.0", needed + 1, needed - 1), "a newer library still serving its ABI");
                string gone = why("99.0.0", needed + 1, needed + 1);
                Assert.True(gone != null && gone.Contains("needs ABI " + needed), "a newer ABI only: " + gone);
                Assert.True(why(own, needed - 1, needed - 1) != null, "an older ABI");
                string stale = why("0.0.1", needed, needed);
                Assert.True(stale != null && stale.Contains("older than this binding"), "an older version: " + stale);
            });

            r.Run("interop/struct_layouts_match_c", () => CheckLayouts(Environment.GetEnvironmentVariable("XG_LAYOUT_FILE")));
            r.Run("interop/every_header_struct_is_probed", () => EveryHeaderStructIsProbed(Environment.GetEnvironmentVariable("XG_LAYOUT_FILE")));

            r.Run("vocabulary/enums_match_library_words", () =>
            {
                CheckEnum<Category>(v => Vocabulary.Name(v), true);
                CheckEnum<RecommendedAction>(v => Vocabulary.Name(v), true);
                CheckEnum<RateLimitProblem>(v => Vocabulary.Name(v), false);
                CheckEnum<AuthProblem>(v => Vocabulary.Name(v), false);
                CheckEnum<Reason>(v => Vocabulary.Name(v), false);
                // GiveUpReason.None (0, "did not give up") has no word in the library.
                CheckEnum<GiveUpReason>(v => Vocabulary.Name(v), false);
                CheckEnum<FailurePolicy>(v => Vocabulary.Name(v), false);
                CheckEnum<StoreFailureKind>(v => Vocabulary.Name(v), false);
                Assert.Equal("unsafe_to_resend", Vocabulary.Name(GiveUpReason.UnsafeToResend), "the newest give-up word");
                Assert.Equal("store_unavailable", Vocabulary.Name(Reason.StoreUnavailable), "the newest reason");
            });

            r.Run("api/no_type_name_collides_with_common_namespaces", () =>
            {
                // A public type named like one in a namespace most files import is ambiguous (CS0104) wherever both
                // namespaces are imported, as XeroGuard.Action was with System.Action.
                var imported = new HashSet<string> { "System", "System.Collections.Generic", "System.IO", "System.Linq",
                    "System.Net", "System.Net.Http", "System.Text", "System.Threading", "System.Threading.Tasks" };
                var frameworkNames = new HashSet<string>(new[] { typeof(object), typeof(Uri), typeof(Enumerable), typeof(HttpClient) }
                    .Select(t => t.Assembly).Distinct().SelectMany(a => a.GetExportedTypes())
                    .Where(t => imported.Contains(t.Namespace)).Select(t => SimpleName(t)));
                Assert.True(frameworkNames.Contains("Action") && frameworkNames.Contains("HttpClient"), "the check sees System.Action");
                var clashes = typeof(Classifier).Assembly.GetExportedTypes().Where(t => frameworkNames.Contains(SimpleName(t)))
                    .Select(t => t.FullName);
                Assert.Sequence(new string[0], clashes, "XeroGuard types named like framework types");
            });

            r.Run("classify/immutable_lists_and_json", () =>
            {
                byte[] body = File.ReadAllBytes(Path.Combine(shared, "fixtures/xero/200_summarize_errors_false_docs_example.txt"));
                var c = Classifier.Classify(200, new[] { H("Content-Type", "application/json") }, body);
                Assert.Equal(Category.PartialSuccess, c.Category, "category");
                Assert.True(c.FailedElements.Count > 0, "failed elements present");
                Assert.True(((ICollection<int>)c.FailedElements).IsReadOnly, "failed elements read-only");
                Assert.Throws<NotSupportedException>(() => ((IList<string>)c.ValidationMessages).Add("x"), "validation messages read-only");
                Assert.True(c.Json.Contains("\"partial_success\""), "JSON form carried: " + c.Json);
                Assert.True(c.Json == c.ToString(), "ToString is the JSON");
            });

            r.Run("classify/null_headers_and_body", () =>
            {
                var c = Classifier.Classify(204, null, null);
                Assert.Equal(Category.Success, c.Category, "204 success");
                Assert.Equal(0L, c.RecommendedWaitMs, "success waits 0");
                Assert.Equal(0, c.ValidationMessages.Count, "no messages");
                Assert.Equal<long?>(null, c.MinuteRemaining, "no remaining header");
            });

            r.Run("classify/retry_after_http_date_against_now", () =>
            {
                var now = new DateTimeOffset(2025, 11, 24, 12, 0, 0, TimeSpan.Zero);
                var c = Classifier.Classify(429, new[] { H("Retry-After", "Mon, 24 Nov 2025 12:00:42 GMT") }, new byte[0], now);
                Assert.Equal(42000L, c.RetryAfterMs, "HTTP-date Retry-After measured against now");
                Assert.Equal(TimeSpan.FromSeconds(42), c.RecommendedWait, "recommended wait");
            });

            r.Run("classify/headers_in_order_empty_and_repeated", () =>
            {
                var c = Classifier.Classify(429, new[] { H("X-Empty", ""), H("X-Null", null), H("Retry-After", "9"), H("retry-after", "3") }, null);
                Assert.Equal(9000L, c.RetryAfterMs, "the first Retry-After, after empty and null values");
                var alone = Classifier.Classify(429, new[] { H("Retry-After", "3") }, null);
                Assert.Equal(3000L, alone.RetryAfterMs, "one header");
                Assert.Equal(Category.RateLimited, Classifier.Classify(429, new KeyValuePair<string, string>[0], null).Category, "no headers");
            });

            r.Run("classify/rejects_bad_input", () =>
            {
                Assert.Throws<ArgumentOutOfRangeException>(() => Classifier.Classify(70000, null, null), "status beyond 16 bits");
                Assert.Throws<ArgumentException>(() => Classifier.Classify(200, new[] { H("X-Bad", "\ud800") }, null), "lone surrogate");
                // HTTP forbids NUL in a header; the library reads the headers as one NUL-separated buffer.
                Assert.Throws<ArgumentException>(() => Classifier.Classify(429, new[] { H("Retry-After", "7\0X-A") }, null), "NUL in a value");
                Assert.Throws<ArgumentException>(() => Classifier.Classify(429, new[] { H("Retry\0After", "7") }, null), "NUL in a name");
                var smuggled = Assert.Throws<ArgumentException>(() => Classifier.Classify(200, new[] { H("X-A\0Retry-After", "7\0X-B") }, null),
                    "NULs that would read as a Retry-After header of their own");
                Assert.True(smuggled.Message.Contains("cannot contain NUL"), "refused by the binding: " + smuggled.Message);
                Assert.Throws<ArgumentException>(() => Classifier.Classify(429, new[] { H(null, "7") }, null), "no name");
                var tooMany = Enumerable.Range(0, 1025).Select(i => H("X-H" + i, "v"));
                var e = Assert.Throws<TooLargeException>(() => Classifier.Classify(200, tooMany, null), "1025 headers");
                Assert.Equal(6, e.Status, "status code");
                Assert.Equal("too_large", e.StatusName, "status name");
                Assert.True(e.Message.Contains("xg_classify"), "message from xg_last_error_message: " + e.Message);
            });

            r.Run("classify_raw/malformed", () =>
            {
                var e = Assert.Throws<MalformedResponseException>(() => Classifier.ClassifyRaw(Encoding.ASCII.GetBytes("not http at all")), "no status line");
                Assert.True(e.Message.Length > 0 && e.Message.Contains("xg_classify_raw"), "message: " + e.Message);
                Assert.Throws<ArgumentNullException>(() => Classifier.ClassifyRaw(null), "null raw");
            });

            r.Run("classify_raw/fixture_429_day", () =>
            {
                var c = Classifier.ClassifyRaw(File.ReadAllBytes(Path.Combine(shared, "fixtures/xero/429_day_headers_observed.txt")));
                Assert.Equal(Category.RateLimited, c.Category, "category");
                Assert.Equal<RateLimitProblem?>(RateLimitProblem.Day, c.RateLimitProblem, "problem");
                Assert.Equal(RecommendedAction.Retry, c.Action, "action");
                Assert.Equal(0L, c.DayRemaining, "day remaining");
            });

            r.Run("http/classify_response_message", () =>
            {
                var response = new HttpResponseMessage((HttpStatusCode)429);
                response.Headers.Add("X-Rate-Limit-Problem", "minute");
                response.Headers.Add("Retry-After", "7");
                response.Headers.Add("X-MinLimit-Remaining", "0");
                response.Content = new ByteArrayContent(new byte[0]);
                var c = response.Classify();
                Assert.Equal(Category.RateLimited, c.Category, "category");
                Assert.Equal<RateLimitProblem?>(RateLimitProblem.Minute, c.RateLimitProblem, "problem");
                Assert.Equal(7000L, c.RetryAfterMs, "retry after");
                Assert.Equal(0L, c.MinuteRemaining, "minute remaining");
                Assert.Equal<Classification>(null, response.GetXeroGuardClassification(), "no handler, no stored classification");
                response.RequestMessage = new HttpRequestMessage();
                Assert.Equal<Classification>(null, response.GetXeroGuardClassification(), "nor with a request the handler did not see");
                Assert.Equal<int?>(null, response.GetXeroGuardAttempts(), "and no attempts");

                var bad = new HttpResponseMessage(HttpStatusCode.BadRequest);
                bad.Content = new StringContent("{\"ErrorNumber\":10,\"Type\":\"ValidationException\",\"Message\":\"A validation exception occurred\"," +
                    "\"Elements\":[{\"ValidationErrors\":[{\"Message\":\"Email address must be valid\"}]}]}", Encoding.UTF8, "application/json");
                var v = bad.ClassifyAsync().Result;
                Assert.Equal(Category.ValidationError, v.Category, "validation category");
                Assert.Sequence(new[] { "Email address must be valid" }, v.ValidationMessages, "messages");
                Assert.Equal("A validation exception occurred", v.Message, "message");
                Assert.True(bad.Content.ReadAsStringAsync().Result.Contains("Email address"), "the body can still be read after classifying");
            });

            r.Run("backoff/defaults_and_decisions", () =>
            {
                var p = new RetryPolicy();
                Assert.Equal(5, p.MaxRetries, "max retries");
                Assert.Equal(500L, p.BaseMs, "base");
                Assert.Equal(30000L, p.MaxBackoffMs, "max backoff");
                Assert.Equal(250L, p.JitterMs, "jitter");
                Assert.Equal(300000L, p.MaxWaitMs, "max wait");

                var notFound = Classifier.Classify(404, null, null);
                var d = Backoff.Decide(notFound, 1);
                Assert.True(!d.Retry && d.GiveUp == GiveUpReason.NotRetryable, "404 is not retried");

                var day = Classifier.Classify(429, new[] { H("X-Rate-Limit-Problem", "day"), H("Retry-After", "66975") }, null);
                d = Backoff.Decide(day, 1);
                Assert.True(!d.Retry && d.GiveUp == GiveUpReason.WaitTooLong, "a day limit is not slept through");
                Assert.Equal(66975000L, d.WaitMs, "the too-long wait is reported");

                var internalError = Classifier.Classify(500, null, null);
                d = Backoff.Decide(internalError, 1);
                Assert.True(d.Retry && d.WaitMs >= 5000 && d.WaitMs <= 5250, "500 waits at least its recommended 5 s: " + d.WaitMs);
                d = Backoff.Decide(internalError, 6);
                Assert.True(!d.Retry && d.GiveUp == GiveUpReason.AttemptsExhausted, "attempt 6 > 5 retries");

                // A custom policy reaches the library intact: no jitter, exact doubling.
                var nonce = Classifier.Classify(401, null, Encoding.ASCII.GetBytes("oauth_problem=nonce_used"));
                var exact = new RetryPolicy { BaseMs = 100, JitterMs = 0, MaxBackoffMs = 350, MaxRetries = 4, MaxWaitMs = 1000 };
                Assert.Sequence(new long[] { 100, 200, 350, 350 }, Enumerable.Range(1, 4).Select(a => Backoff.Decide(nonce, a, exact).WaitMs), "waits");
                Assert.Equal(GiveUpReason.AttemptsExhausted, Backoff.Decide(nonce, 5, exact).GiveUp, "attempt 5 > 4 retries");
                Assert.Throws<ArgumentOutOfRangeException>(() => Backoff.Decide(nonce, 1, new RetryPolicy { BaseMs = -1 }), "negative base");
            });

            r.Run("resend/never_duplicates_a_write", () =>
            {
                var policy = new RetryPolicy { BaseMs = 100, JitterMs = 0, MaxBackoffMs = 1000, MaxRetries = 3, MaxWaitMs = 10000 };
                var internalError = Classifier.Classify(500, new[] { H("Retry-After", "1") }, null);
                var minute = Classifier.Classify(429, new[] { H("X-Rate-Limit-Problem", "minute"), H("Retry-After", "2") }, null);
                var offline = Classifier.Classify(503, null, Encoding.ASCII.GetBytes("The Organisation is offline"));
                var invalid = Classifier.Classify(400, null, null);
                Assert.True(internalError.MayHaveBeenProcessed, "a 500 may have been carried out");
                Assert.True(!minute.MayHaveBeenProcessed && !offline.MayHaveBeenProcessed, "a 429 or an offline organisation was not");

                BackoffDecision d = Resend.Decide("GET", false, internalError, 1, policy);
                Assert.True(d.Retry && d.WaitMs == 1000 && d.GiveUp == GiveUpReason.None, "a GET is resent, after Retry-After: " + d.WaitMs);
                d = Resend.Decide("POST", false, internalError, 1, policy);
                Assert.True(!d.Retry && d.GiveUp == GiveUpReason.UnsafeToResend, "a keyless POST answered 500 is not");
                Assert.True(Resend.Decide("put", true, internalError, 1, policy).Retry, "a PUT with a key is (methods in any case)");
                d = Resend.Decide("POST", false, minute, 1, policy);
                Assert.True(d.Retry && d.WaitMs == 2000, "a keyless POST answered 429 was not processed: resent");
                d = Resend.Decide("PATCH", false, offline, 1, new RetryPolicy());
                Assert.True(d.Retry && d.WaitMs == 300000, "nor one refused by an offline organisation, after its 5 minutes: " + d.GiveUp);
                Assert.Equal(GiveUpReason.NotRetryable, Resend.Decide("GET", false, invalid, 1, policy).GiveUp, "a 400 is final");
                Assert.Equal(GiveUpReason.AttemptsExhausted, Resend.Decide("GET", false, internalError, 4, policy).GiveUp, "after 3 retries");

                d = Resend.Decide("POST", false, TransportFailure.NotSent, 1, policy);
                Assert.True(d.Retry && d.WaitMs == 100, "nothing was sent: resent after the backoff");
                Assert.Equal(GiveUpReason.UnsafeToResend, Resend.Decide("POST", false, TransportFailure.NoResponse, 1, policy).GiveUp,
                    "no answer to a keyless POST: not resent");
                Assert.True(Resend.Decide("POST", true, TransportFailure.NoResponse, 2, policy).Retry, "with a key it is");
                Assert.True(Resend.Decide("DELETE", false, TransportFailure.NoResponse, 1, policy).Retry, "a DELETE is too");

                foreach (string write in new[] { "POST", "PUT", "PATCH", "post", "PROPFIND" })
                    Assert.True(Resend.NeedsIdempotencyKey(write), write + " is a write to the library");
                foreach (string read in new[] { "GET", "HEAD", "OPTIONS", "DELETE", "get" })
                    Assert.True(!Resend.NeedsIdempotencyKey(read), read + " is not");
                foreach (string method in new[] { "POST", "put", "PROPFIND", "GET", "Delete" })
                    Assert.Equal(Resend.Decide(method, false, TransportFailure.NoResponse, 1).GiveUp == GiveUpReason.UnsafeToResend,
                        Resend.NeedsIdempotencyKey(method), method + ": a key exactly where a resend would be held");
                Assert.Throws<ArgumentException>(() => Resend.NeedsIdempotencyKey(""), "no method");
                Assert.Throws<TooLargeException>(() => Resend.NeedsIdempotencyKey(new string('M', 40)), "a 40-byte method");

                Assert.Throws<ArgumentException>(() => Resend.Decide("", false, internalError, 1), "no method");
                Assert.Throws<ArgumentNullException>(() => Resend.Decide("GET", false, (Classification)null, 1), "no response");
                Assert.Throws<ArgumentOutOfRangeException>(() => Resend.Decide("GET", false, (TransportFailure)7, 1), "no such failure");
                Assert.Throws<ArgumentOutOfRangeException>(() => Resend.Decide("GET", false, internalError, -1), "negative attempt");
                var e = Assert.Throws<TooLargeException>(() => Resend.Decide(new string('M', 40), false, internalError, 1), "a 40-byte method");
                Assert.True(e.Message.Contains("xg_resend"), "the library's message: " + e.Message);
            });

            r.Run("errors/new_statuses_have_their_exceptions", () =>
            {
                // One call a day: each reservation books a day later, until beyond the horizon (about 24.8 days).
                var limits = new Limits { TenantDay = new WindowLimit(1, 86400000, 0) };
                using (var limiter = new Limiter(limits, LimiterClock.Manual))
                {
                    var e = Assert.Throws<BookingTooFarException>(() => { for (int i = 0; i < 30; i++) limiter.Reserve("t"); }, "30 days ahead");
                    Assert.Equal(12, e.Status, "status");
                    Assert.Equal("booking_too_far", e.StatusName, "status name");
                }
                Assert.True(typeof(StoreUnavailableException).IsSubclassOf(typeof(StoreException)), "catch (StoreException) sees both");
                // XG_STATUS_UNKNOWN_FIELDS: this binding always passes its own struct sizes, so only Native.Ensure shows it.
                MethodInfo ensure = typeof(Library).Assembly.GetType("XeroGuard.Native")
                    .GetMethod("Ensure", BindingFlags.NonPublic | BindingFlags.Static);
                var unknown = Assert.Throws<TargetInvocationException>(() => ensure.Invoke(null, new object[] { 15 }), "status 15");
                Assert.True(unknown.InnerException is UnknownFieldsException &&
                    ((UnknownFieldsException)unknown.InnerException).StatusName == "unknown_fields", "its exception");
                // The store's credentials and ACL: StoreExceptions of their own, named by the library.
                var auth = Assert.Throws<TargetInvocationException>(() => ensure.Invoke(null, new object[] { 16 }), "status 16");
                Assert.True(auth.InnerException is StoreAuthException &&
                    ((StoreAuthException)auth.InnerException).StatusName == "store_auth", "a wrong password");
                var forbidden = Assert.Throws<TargetInvocationException>(() => ensure.Invoke(null, new object[] { 17 }), "status 17");
                Assert.True(forbidden.InnerException is StoreForbiddenException &&
                    ((StoreForbiddenException)forbidden.InnerException).StatusName == "store_forbidden", "an ACL refusal");
                Assert.True(typeof(StoreAuthException).IsSubclassOf(typeof(StoreException)) &&
                    typeof(StoreForbiddenException).IsSubclassOf(typeof(StoreException)), "catch (StoreException) sees them");
                Assert.True(typeof(LimiterInterruptedException).IsSubclassOf(typeof(OperationCanceledException)) &&
                    typeof(IXeroGuardError).IsAssignableFrom(typeof(LimiterInterruptedException)), "an interrupted wait is a cancellation");
            });

            r.Run("errors/invalid_argument_is_an_argument_exception", () =>
            {
                using (var limiter = new Limiter(null, LimiterClock.Manual))
                {
                    limiter.SetNow(1000);
                    var e = Assert.Throws<ArgumentException>(() => limiter.SetNow(999), "a clock moved backwards");
                    var invalid = e as InvalidArgumentException;
                    Assert.True(invalid != null, "it is the library's InvalidArgumentException: " + e.GetType());
                    Assert.Equal(3, invalid.Status, "status");
                    Assert.Equal("invalid_argument", invalid.StatusName, "status name");
                    Assert.True(e is IXeroGuardError && !typeof(XeroGuardException).IsInstanceOfType(e),
                        "an IXeroGuardError, outside the XeroGuardException family");
                    Assert.True(e.Message.Length > 0 && !e.Message.Equals("invalid_argument"), "the library's message: " + e.Message);
                }
                IXeroGuardError tooLarge = Assert.Throws<TooLargeException>(
                    () => Classifier.Classify(200, Enumerable.Range(0, 1025).Select(i => H("X-H" + i, "v")), null), "1025 headers");
                Assert.Equal("too_large", tooLarge.StatusName, "other statuses are IXeroGuardError too");
            });

            r.Run("limits/defaults_from_library", () =>
            {
                var l = new Limits();
                Assert.Equal("60/60000 ms (+500 ms)", l.TenantMinute.ToString(), "tenant minute");
                Assert.Equal("5000/86400000 ms (+60000 ms)", l.TenantDay.ToString(), "tenant day");
                Assert.Equal(5, l.TenantConcurrency, "concurrency");
                Assert.Equal("10000/60000 ms (+500 ms)", l.AppMinute.ToString(), "app minute");
                Assert.Equal(120000L, l.PermitTimeoutMs, "permit timeout");
                Assert.Equal(0, l.MaxTenants, "tenant cap");
                Assert.Equal(0L, Limits.Exact().TenantMinute.MarginMs, "exact limits have no margin");
            });
        }

        // Every member's word is the library's for its code; zeroIsValue false: code 0 means "none" in C (a C# member
        // with code 0, such as GiveUpReason.None, stands for it and has no word).
        private static void CheckEnum<T>(Func<T, string> name, bool zeroIsValue) where T : struct
        {
            var values = Enum.GetValues(typeof(T)).Cast<T>().ToList();
            foreach (T v in values)
            {
                if (!zeroIsValue && Convert.ToInt32(v) == 0) continue;
                Assert.Equal(Snake(v.ToString()), name(v), typeof(T).Name + "." + v);
            }
            // One past the last code is unknown to the library: the enum is complete.
            int next = values.Select(v => Convert.ToInt32(v)).Max() + 1;
            Assert.Equal<string>(null, name((T)Enum.ToObject(typeof(T), next)), typeof(T).Name + " has no code " + next);
            if (!zeroIsValue) Assert.Equal<string>(null, name((T)Enum.ToObject(typeof(T), 0)), typeof(T).Name + " code 0 is none");
        }

        // Compares every mirrored struct with the C compiler's view (layout_probe output).
        private static void CheckLayouts(string file)
        {
            Assert.True(!string.IsNullOrEmpty(file) && File.Exists(file), "XG_LAYOUT_FILE names layout_probe's output (run-tests.sh makes it)");
            Assembly lib = typeof(Classifier).Assembly;
            var seen = new HashSet<string>();
            int checkedFields = 0;
            foreach (string line in File.ReadAllLines(file).Where(l => l.Trim().Length > 0))
            {
                string[] parts = line.Split(' ');
                string typeName = "XeroGuard." + Pascal(parts[0]);
                Type t = lib.GetType(typeName);
                Assert.True(t != null, "C# mirror of " + parts[0] + " (" + typeName + ")");
                long expected = long.Parse(parts[2]);
                if (parts[1] == "-")
                {
                    Assert.Equal(expected, (long)Marshal.SizeOf(t), "sizeof(" + parts[0] + ")");
                    seen.Add(t.Name);
                }
                else
                {
                    string field = Pascal(parts[1]);
                    Assert.True(t.GetField(field) != null, parts[0] + "." + parts[1] + " is mirrored as " + field);
                    Assert.Equal(expected, (long)Marshal.OffsetOf(t, field), "offsetof(" + parts[0] + ", " + parts[1] + ")");
                    checkedFields++;
                }
            }
            foreach (Type t in lib.GetTypes().Where(t => t.Namespace == "XeroGuard" && t.Name.StartsWith("Xg") && t.IsValueType))
            {
                Assert.True(seen.Contains(t.Name), t.Name + " is checked against C");
                Assert.Equal(t.GetFields().Length, File.ReadAllLines(file).Count(l => l.StartsWith(Snake(t.Name) + " ") && !l.Contains(" - ")),
                    "every field of " + t.Name + " is checked");
            }
            Assert.True(checkedFields > 40, "fields checked: " + checkedFields);
        }

        // Every struct the header declares has lines in layout_probe's output, so a struct added to the ABI cannot be
        // left unmirrored (CheckLayouts then requires its C# mirror, field by field).
        private static void EveryHeaderStructIsProbed(string file)
        {
            string header = Path.Combine(AppDomain.CurrentDomain.BaseDirectory, "..", "..", "..", "include", "xeroguard.h");
            Assert.True(File.Exists(header) && !string.IsNullOrEmpty(file) && File.Exists(file), "the header and the probe output");
            var declared = Regex.Matches(File.ReadAllText(header), @"typedef struct \{[^}]*\} (xg_\w+);")
                .Cast<Match>().Select(m => m.Groups[1].Value).ToList();
            var probed = new HashSet<string>(File.ReadAllLines(file).Where(l => l.Contains(" - ")).Select(l => l.Split(' ')[0]));
            Assert.True(declared.Count >= 13, "structs found in the header: " + string.Join(", ", declared));
            Assert.Sequence(new string[0], declared.Where(d => !probed.Contains(d)), "header structs missing from layout_probe.c");
        }

        // "Action`1" and "Action" are the same name in source.
        private static string SimpleName(Type t)
        {
            int tick = t.Name.IndexOf('`');
            return tick < 0 ? t.Name : t.Name.Substring(0, tick);
        }

        private static string Pascal(string snake)
        {
            return string.Concat(snake.Split('_').Select(w => char.ToUpperInvariant(w[0]) + w.Substring(1)));
        }
    }
}
