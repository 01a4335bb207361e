using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace XeroGuard.Tests
{
    // Every case of shared/conformance/classify-cases.json and of the project's own tests/conformance/
    // classify-cases.json, through Classify and through ClassifyRaw.
    internal static class ConformanceTests
    {
        public static void Register(Runner runner, string sharedDir)
        {
            RegisterFile(runner, "conformance", sharedDir, 70);
            // The test program runs from bindings/csharp/build/; the project's cases are in the checkout's tests/.
            string projectTests = Path.Combine(AppDomain.CurrentDomain.BaseDirectory, "..", "..", "..", "tests");
            RegisterFile(runner, "project-conformance", projectTests, null);
        }

        // baseDir/conformance/classify-cases.json; a case's body_file is relative to baseDir.
        private static void RegisterFile(Runner runner, string label, string baseDir, int? expectedCount)
        {
            string path = Path.Combine(baseDir, "conformance", "classify-cases.json");
            JsonNode doc = null;
            runner.Run(label + "/file", () =>
            {
                doc = JsonNode.Parse(File.ReadAllBytes(path));
                int count = doc["cases"].Children.Count();
                if (expectedCount.HasValue) Assert.Equal(expectedCount.Value, count, "number of conformance cases");
                else Assert.True(count > 0, path + " holds no cases");
            });
            if (doc == null) return;

            foreach (JsonNode c in doc["cases"].Children)
            {
                JsonNode testCase = c;
                runner.Run(label + "/" + c["name"].String, () => RunCase(testCase, baseDir));
            }
        }

        private static void RunCase(JsonNode c, string baseDir)
        {
            int status = (int)c["status"].Long.Value;
            var headers = c["headers"].Children
                .Select(h => h.Children.Select(x => x.String).ToArray())
                .Select(pair => new KeyValuePair<string, string>(pair[0], pair[1]))
                .ToList();
            byte[] body;
            if (c.Has("body_file")) body = File.ReadAllBytes(Path.Combine(baseDir, c["body_file"].String));
            else if (c.Has("body_base64")) body = Convert.FromBase64String(c["body_base64"].String);
            else body = Encoding.UTF8.GetBytes(c["body"].String ?? "");

            Classification direct = Classifier.Classify(status, headers, body);
            Check(c["expect"], direct, "classify");

            // The same response as raw bytes, as curl -i would save it.
            var head = new StringBuilder();
            head.AppendFormat("HTTP/1.1 {0} Status\r\n", status);
            foreach (var h in headers) head.AppendFormat("{0}: {1}\r\n", h.Key, h.Value);
            head.Append("\r\n");
            byte[] raw = Encoding.UTF8.GetBytes(head.ToString()).Concat(body).ToArray();
            Check(c["expect"], Classifier.ClassifyRaw(raw), "classify_raw");
        }

        private static void Check(JsonNode expect, Classification got, string path)
        {
            foreach (JsonNode e in expect.Children)
            {
                string what = path + "." + e.Key;
                switch (e.Key)
                {
                    case "category": Assert.Equal(e.String, Vocabulary.Name(got.Category), what); break;
                    case "action": Assert.Equal(e.String, Vocabulary.Name(got.Action), what); break;
                    case "retryable": Assert.Equal(e.Bool, got.Retryable, what); break;
                    case "rate_limit_problem":
                        Assert.Equal(e.String, got.RateLimitProblem.HasValue ? Vocabulary.Name(got.RateLimitProblem.Value) : null, what);
                        break;
                    case "auth_problem":
                        Assert.Equal(e.String, got.AuthProblem.HasValue ? Vocabulary.Name(got.AuthProblem.Value) : null, what);
                        break;
                    case "retry_after_ms": Assert.Equal(e.Long, got.RetryAfterMs, what); break;
                    case "recommended_wait_ms": Assert.Equal(e.Long, got.RecommendedWaitMs, what); break;
                    case "minute_remaining": Assert.Equal(e.Long, got.MinuteRemaining, what); break;
                    case "day_remaining": Assert.Equal(e.Long, got.DayRemaining, what); break;
                    case "app_minute_remaining": Assert.Equal(e.Long, got.AppMinuteRemaining, what); break;
                    case "error_number": Assert.Equal(e.Long, got.ErrorNumber, what); break;
                    case "error_type": Assert.Equal(e.String, got.ErrorType, what); break;
                    case "message": Assert.Equal(e.String, got.Message, what); break;
                    case "oauth_problem": Assert.Equal(e.String, got.OAuthProblem, what); break;
                    case "oauth_problem_advice": Assert.Equal(e.String, got.OAuthProblemAdvice, what); break;
                    case "problem_title": Assert.Equal(e.String, got.ProblemTitle, what); break;
                    case "problem_detail": Assert.Equal(e.String, got.ProblemDetail, what); break;
                    case "correlation_id": Assert.Equal(e.String, got.CorrelationId, what); break;
                    case "validation_messages": Assert.Sequence(e.Children.Select(x => x.String), got.ValidationMessages, what); break;
                    case "warnings": Assert.Sequence(e.Children.Select(x => x.String), got.Warnings, what); break;
                    case "failed_elements": Assert.Sequence(e.Children.Select(x => (int)x.Long.Value), got.FailedElements, what); break;
                    default: throw new AssertionException(what + ": this test does not know the key, so it cannot check it");
                }
            }
        }
    }
}
