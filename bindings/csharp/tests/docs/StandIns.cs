// Stand-ins for the packages the README's recipes use and this machine does not have (no NuGet here):
// Microsoft.Extensions.DependencyInjection / Microsoft.Extensions.Http, Microsoft.Extensions.Logging(.Abstractions),
// and Xero-NetStandard. Only the signatures the recipes call, as those packages declare them (learn.microsoft.com API
// pages; XeroAPI/Xero-NetStandard Xero.NetStandard.OAuth2/Client and Api), so the docs test checks the recipes'
// use of XeroGuard against the real shapes. No behaviour: nothing here is run.
using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;

namespace Microsoft.Extensions.DependencyInjection
{
    public interface IServiceCollection { }

    public interface IHttpClientBuilder
    {
        string Name { get; }
        IServiceCollection Services { get; }
    }

    public static class ServiceCollectionServiceExtensions
    {
        public static IServiceCollection AddSingleton<TService>(this IServiceCollection services, TService implementationInstance)
            where TService : class { throw new NotImplementedException(); }
    }

    public static class ServiceProviderServiceExtensions
    {
        public static T GetRequiredService<T>(this IServiceProvider provider) { throw new NotImplementedException(); }
    }

    public static class HttpClientFactoryServiceCollectionExtensions
    {
        public static IHttpClientBuilder AddHttpClient(this IServiceCollection services, string name) { throw new NotImplementedException(); }

        public static IHttpClientBuilder AddHttpClient(this IServiceCollection services, string name, Action<HttpClient> configureClient)
        { throw new NotImplementedException(); }
    }

    public static class HttpClientBuilderExtensions
    {
        public static IHttpClientBuilder AddHttpMessageHandler(this IHttpClientBuilder builder,
            Func<IServiceProvider, DelegatingHandler> configureHandler) { throw new NotImplementedException(); }
    }
}

namespace Microsoft.Extensions.Logging
{
    public enum LogLevel { Trace = 0, Debug = 1, Information = 2, Warning = 3, Error = 4, Critical = 5, None = 6 }

    public struct EventId
    {
        public EventId(int id, string name = null) { throw new NotImplementedException(); }
    }

    public interface ILogger
    {
        void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception exception, Func<TState, Exception, string> formatter);
        bool IsEnabled(LogLevel logLevel);
        IDisposable BeginScope<TState>(TState state);
    }

    public interface ILoggerFactory : IDisposable
    {
        ILogger CreateLogger(string categoryName);
    }

    public static class LoggerExtensions
    {
        public static void LogDebug(this ILogger logger, string message, params object[] args) { throw new NotImplementedException(); }

        public static void LogInformation(this ILogger logger, string message, params object[] args) { throw new NotImplementedException(); }

        public static void LogWarning(this ILogger logger, string message, params object[] args) { throw new NotImplementedException(); }

        public static void LogWarning(this ILogger logger, Exception exception, string message, params object[] args)
        { throw new NotImplementedException(); }

        public static void LogError(this ILogger logger, Exception exception, string message, params object[] args)
        { throw new NotImplementedException(); }
    }
}

namespace System.Net.Http
{
    public interface IHttpClientFactory
    {
        HttpClient CreateClient(string name);
    }
}

namespace Xero.NetStandard.OAuth2.Client
{
    public class Multimap<T, TValue> : Dictionary<T, IList<TValue>> { }

    public interface IApiResponse
    {
        Type ResponseType { get; }
        object Content { get; }
        HttpStatusCode StatusCode { get; }
        Multimap<string, string> Headers { get; }
        string ErrorText { get; set; }
        List<Cookie> Cookies { get; set; }
    }

    public class ApiResponse<T> : IApiResponse
    {
        public Type ResponseType { get { throw new NotImplementedException(); } }
        public object Content { get; set; }
        public HttpStatusCode StatusCode { get; }
        public Multimap<string, string> Headers { get; }
        public string ErrorText { get; set; }
        public List<Cookie> Cookies { get; set; }
        public T Data { get; }
    }

    public delegate Exception ExceptionFactory(string methodName, IApiResponse response);
}

namespace Xero.NetStandard.OAuth2.Model.Accounting
{
    public class Invoices { }
}

namespace Xero.NetStandard.OAuth2.Api
{
    using Xero.NetStandard.OAuth2.Client;
    using Xero.NetStandard.OAuth2.Model.Accounting;

    public class AccountingApi
    {
        public ExceptionFactory ExceptionFactory { get; set; }

        public Task<ApiResponse<Invoices>> GetInvoicesAsyncWithHttpInfo(string accessToken, string xeroTenantId,
            DateTime? ifModifiedSince = null, string where = null, string order = null, List<Guid> iDs = null,
            List<string> invoiceNumbers = null, List<Guid> contactIDs = null, List<string> statuses = null, int? page = null,
            bool? includeArchived = null, bool? createdByMyApp = null, int? unitdp = null, bool? summaryOnly = null,
            int? pageSize = null, string searchTerm = null, CancellationToken cancellationToken = default(CancellationToken))
        { throw new NotImplementedException(); }

        public Task<ApiResponse<Invoices>> CreateInvoicesAsyncWithHttpInfo(string accessToken, string xeroTenantId, Invoices invoices,
            bool? summarizeErrors = null, int? unitdp = null, string idempotencyKey = null,
            CancellationToken cancellationToken = default(CancellationToken))
        { throw new NotImplementedException(); }
    }
}
