//! classify() beside the anchors a user would otherwise pay for: `serde_json::from_slice::<Value>` of the same
//! bytes, and quick-xml reading every event of the same XML. Run: cargo bench --bench classify
use std::hint::black_box;
use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use xeroguard::classify;

fn validation_400() -> Vec<u8> {
    let elements: Vec<String> = (0..6)
        .map(|i| format!(r#"{{"ContactID":"00000000-0000-0000-0000-000000000000","Name":"Contact {i}","ValidationErrors":[{{"Message":"The contact name Contact {i} is already assigned to another contact."}}]}}"#))
        .collect();
    let body = format!(
        r#"{{"ErrorNumber":10,"Type":"ValidationException","Message":"A validation exception occurred","Elements":[{}]}}"#,
        elements.join(",")
    );
    assert!((900..1400).contains(&body.len()), "about 1 KB: {}", body.len());
    body.into_bytes()
}

/// A 1 MB page of invoices with no error indicator; `error_last` puts one failed element at the end.
fn batch_200(error_last: bool) -> Vec<u8> {
    let mut invoices = Vec::new();
    let mut size = 0;
    while size < 1_000_000 {
        let i = invoices.len();
        let invoice = format!(
            r#"{{"InvoiceID":"{i:08}-2222-3333-4444-555555555555","Type":"ACCREC","Contact":{{"ContactID":"c-{i}","Name":"Customer {i}"}},"LineItems":[{{"Description":"Consulting","Quantity":1.0,"UnitAmount":115.0,"AccountCode":"200"}}],"Total":115.0,"HasErrors":false,"ValidationErrors":[],"StatusAttributeString":"OK"}}"#
        );
        size += invoice.len() + 1;
        invoices.push(invoice);
    }
    if error_last {
        let last = invoices.last_mut().unwrap();
        *last = last.replace(r#""HasErrors":false,"ValidationErrors":[],"StatusAttributeString":"OK""#, r#""HasErrors":true,"ValidationErrors":[{"Message":"Invoice not of valid status for creation"}],"StatusAttributeString":"ERROR""#);
    }
    format!(r#"{{"Id":"x","Status":"OK","Invoices":[{}]}}"#, invoices.join(",")).into_bytes()
}

/// A 1 MB XML page of invoices (the default when no `Accept: application/json`), no error indicator: every invoice
/// has a `<Status>`, which the scan for XPM's root `<Status>ERROR` must pass over.
fn xml_200_clean() -> Vec<u8> {
    let mut page = String::from("<Response><Id>x</Id><Status>OK</Status><Invoices>");
    let mut i = 0;
    while page.len() < 1_000_000 {
        page.push_str(&format!(
            "<Invoice><InvoiceID>{i:08}-2222-3333-4444-555555555555</InvoiceID><Type>ACCREC</Type><Contact>\
             <ContactID>c-{i}</ContactID><Name>Customer {i}</Name></Contact><Status>AUTHORISED</Status><LineItems>\
             <LineItem><Description>Consulting</Description><Quantity>1.0000</Quantity><UnitAmount>115.00</UnitAmount>\
             </LineItem></LineItems><Total>115.00</Total><HasErrors>false</HasErrors></Invoice>"
        ));
        i += 1;
    }
    page.push_str("</Invoices></Response>");
    page.into_bytes()
}

fn xml_events(xml: &[u8]) -> usize {
    let text = std::str::from_utf8(xml).unwrap();
    let mut reader = quick_xml::Reader::from_str(text);
    let mut events = 0usize;
    while !matches!(reader.read_event().unwrap(), quick_xml::events::Event::Eof) {
        events += 1;
    }
    events
}

fn xml_400() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/xero/400_validation_invoice.xml"))
        .expect("../shared/fixtures beside the checkout")
}

fn bench(c: &mut Criterion) {
    let now = SystemTime::now();
    let mut group = c.benchmark_group("classify");
    group.sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    let json_cases = [
        ("json_400_1kb", 400, validation_400()),
        ("json_200_1mb_clean", 200, batch_200(false)),
        ("json_200_1mb_error_last", 200, batch_200(true)),
    ];
    for (name, status, body) in &json_cases {
        group.bench_function(format!("{name}/xeroguard"), |b| b.iter(|| classify(*status, &[], black_box(body), now)));
        group.bench_function(format!("{name}/serde_json_value"), |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)).unwrap())
        });
    }
    for (name, status, xml) in [("xml_400", 400, xml_400()), ("xml_200_1mb_clean", 200, xml_200_clean())] {
        group.bench_function(format!("{name}/xeroguard"), |b| b.iter(|| classify(status, &[], black_box(&xml), now)));
        group.bench_function(format!("{name}/quick_xml_events"), |b| b.iter(|| xml_events(black_box(&xml))));
    }
    let headers = [
        ("Retry-After", "17"),
        ("X-Rate-Limit-Problem", "minute"),
        ("X-MinLimit-Remaining", "0"),
        ("X-DayLimit-Remaining", "4321"),
    ];
    group.bench_function("headers_only_429/xeroguard", |b| b.iter(|| classify(429, black_box(&headers), b"", now)));
    // The body is empty, so the anchor parses the same information as a user would hold it: the headers as JSON.
    let headers_json = serde_json::to_vec(
        &headers.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>(),
    )
    .unwrap();
    group.bench_function("headers_only_429/serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&headers_json)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
