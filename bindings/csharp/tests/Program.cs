using System;
using System.IO;

namespace XeroGuard.Tests
{
    // Usage: mono XeroGuard.Tests.exe [filter] (or --load-probe PATH: see LoaderTests). Environment: XEROGUARD_SHARED (the shared/ folder),
    // XG_LAYOUT_FILE (output of layout_probe), XG_SERVER_URL (the Xero-like test server), XG_REDIS_URL (a redis-server),
    // XG_REDIS_SERVER and XG_REDIS_DIR (redis-server's path and a directory for the servers the tests start themselves).
    internal static class Program
    {
        private static int Main(string[] args)
        {
            if (args.Length == 2 && args[0] == LoaderTests.ProbeFlag) return LoaderTests.Probe(args[1]);
            var runner = new Runner(args.Length > 0 ? args[0] : null);
            string shared = Environment.GetEnvironmentVariable("XEROGUARD_SHARED");
            if (string.IsNullOrEmpty(shared))
                shared = Path.Combine(AppDomain.CurrentDomain.BaseDirectory, "..", "..", "..", "..", "shared");

            ApiTests.Register(runner, shared);
            ConformanceTests.Register(runner, shared);
            LimiterTests.Register(runner);
            StatisticsTests.Register(runner);
            MetricsTests.Register(runner);
            HandlerTests.Register(runner, Environment.GetEnvironmentVariable("XG_SERVER_URL"));
            ResendTests.Register(runner);
            RedisTests.Register(runner);
            ResponseBodyTests.Register(runner, shared);
            LoaderTests.Register(runner);
            DocsTests.Register(runner);

            if (runner.Failures.Count > 0) Console.WriteLine("failed: " + string.Join(", ", runner.Failures));
            Console.WriteLine("{0} passed, {1} failed", runner.Passed, runner.Failed);
            return runner.Failed == 0 && runner.Passed > 0 ? 0 : 1;
        }
    }
}
