//! `xeroguard snapshot`: a tenant's shared pacing state, or every tenant's (`--all`), for a person or (`--json`) for
//! a machine.

use std::process::ExitCode;

use xeroguard::pacing::Snapshot;

use super::view::{self, Reading, pressure};
use super::{StoreArgs, emit, fail, json_text, usage_error};

pub fn snapshot_command(args: &[String]) -> ExitCode {
    let (mut tenant, mut json, mut pretty, mut all) = (None, false, false, false);
    let parsed = StoreArgs::parse(args, |arg, _| {
        match arg {
            "--json" => json = true,
            "--pretty" => pretty = true,
            "--all" => all = true,
            option if option.starts_with('-') => return Err(format!("snapshot has no option {option}")),
            name if tenant.is_none() => tenant = Some(name),
            _ => return Err("snapshot shows one tenant (or --all)".to_owned()),
        }
        Ok(())
    });
    let options = match parsed {
        Ok(options) => options,
        Err(why) => return usage_error(&why),
    };
    if all && tenant.is_some() {
        return usage_error("snapshot shows one TENANT or --all, not both");
    }
    let store = match options.open("snapshot") {
        Ok(s) => s,
        Err(code) => return code,
    };
    let json = json || pretty;
    let text = if all {
        let reading = store.read(options.max_tenants);
        reading.map(|r| if json { json_text(&all_json(&r), pretty) } else { view::all_text(&r) })
    } else {
        store
            .snapshot(tenant.unwrap_or(""))
            .map(|s| if json { json_text(&s.to_json(), pretty) } else { view::tenant_text(&s, store.prefix()) })
    };
    match text {
        Ok(text) => emit(&text, ExitCode::SUCCESS),
        Err(e) => fail(&e),
    }
}

fn tenant_json(s: &Snapshot) -> serde_json::Value {
    let mut json = s.to_json();
    let p = pressure(s);
    json["pressure"] = serde_json::json!({
        "blocked": p.blocked,
        "window_permille": p.window_permille,
        "in_flight_permille": p.in_flight_permille,
    });
    json
}

/// `--all --json`: the app's window and blocks, each tenant's snapshot (busiest first, with its pressure), and how
/// complete the listing is.
fn all_json(r: &Reading) -> serde_json::Value {
    let app = r.app.to_json();
    serde_json::json!({
        "prefix": r.prefix,
        "now_ms": r.app.now_ms,
        "app_minute": app["app_minute"],
        "app_blocked_until_ms": app["app_blocked_until_ms"],
        "app_block_reason": app["app_block_reason"],
        "complete": r.listing.complete,
        "scan_steps": r.listing.scan_steps,
        "max_tenants": r.max_tenants,
        "tenants": r.tenants.iter().map(tenant_json).collect::<Vec<_>>(),
    })
}
