use indicatif::{ProgressBar, ProgressStyle};
use tessera_backend::tenancy::{lifecycle, migrate, relocate, topology::Topology};
use tessera_backend::{db, Backend};
use tessera_server::{config::Config, run, run_workers};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: tessera-server [command]

  serve                   (default) serve HTTP; configuration comes from the environment (see README)
  migrate [--jobs N]      migrate the control plane, every region's shared schema and every tenant
                          schema and dedicated database (N at a time, default 8); rerun to resume
  tenants                 list organizations with their model, region, status and schema version
  move <slug> --model M [--region R]
                          move an organization to model M (pooled, schema, dedicated) and/or region R
  move <slug> --abort     undo a move that was interrupted (the tenant goes back to where it was)
  purge                   purge organizations whose deletion retention period is over
  worker                  run only the job queue's workers (TESSERA_JOB_WORKERS of them, at least 1)
  jobs                    the job queue: how many jobs of each kind are in each state, and the
                          most recent dead ones with their last error
  jobs retry <id>         queue a dead job again, with its attempts back
  jobs discard <id>       remove a dead job for good
  jobs check              enqueue a probe job and wait (up to 60 s) for a worker to run it
  audit verify [--org S]  check the audit logs' hash chains (of organization S, or of every one):
                          names each edited, deleted or reordered record; exits 1 if any
  billing sync            make Stripe's products, prices and API-call meter match the plan catalogue
                          (billing/plans.toml, or TESSERA_BILLING_PLANS), and report what changed
";

fn usage() -> ! {
    eprint!("{USAGE}");
    std::process::exit(2);
}

/// The value after `--name`, if given.
fn option(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).map(|i| args.get(i + 1).cloned().unwrap_or_else(|| usage()))
}

#[tokio::main]
async fn main() {
    tessera_server::init_tracing();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().cloned().unwrap_or_else(|| "serve".into());
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tessera-server: {e}");
            std::process::exit(1);
        }
    };
    let result = match command.as_str() {
        "serve" => run(config).await.map_err(|e| e.to_string()),
        "migrate" => {
            let jobs = option(&args, "--jobs").map(|j| j.parse().unwrap_or_else(|_| usage())).unwrap_or(8);
            migrate_command(&config, jobs).await
        }
        "tenants" => list_tenants(&config).await,
        "move" => {
            let slug = args.get(1).filter(|a| !a.starts_with("--")).cloned().unwrap_or_else(|| usage());
            if args.iter().any(|a| a == "--abort") {
                abort_command(&config, &slug).await
            } else {
                let model = option(&args, "--model").unwrap_or_default();
                let region = option(&args, "--region").unwrap_or_default();
                move_command(&config, &slug, &model, &region).await
            }
        }
        "purge" => purge_command(&config).await,
        "worker" => run_workers(config).await.map_err(|e| e.to_string()),
        "jobs" => jobs_command(&config, &args[1..]).await,
        "audit" if args.get(1).map(String::as_str) == Some("verify") => audit_verify(&config, option(&args, "--org")).await,
        "billing" if args.get(1).map(String::as_str) == Some("sync") => billing_sync(&config).await,
        _ => usage(),
    };
    if let Err(e) = result {
        eprintln!("tessera-server: {e}");
        std::process::exit(1);
    }
}

async fn migrate_command(config: &Config, jobs: usize) -> Result<(), String> {
    let owner_url = config.owner_database_url.as_deref().ok_or("DATABASE_OWNER_URL must name the control plane's schema owner")?;
    let topology = Topology::new(&config.topology).map_err(|e| e.to_string())?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} tenants  {msg}").map_err(|e| e.to_string())?.progress_chars("=> "),
    );
    let report = migrate::migrate_all(owner_url, &topology, jobs, &|done, total, slug| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(slug.to_string());
    })
    .await
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    println!("control plane: up to date");
    for (region, result) in &report.regions {
        match result {
            Ok(v) => println!("region {region}: shared schema at version {v}"),
            Err(e) => println!("region {region}: FAILED: {e}"),
        }
    }
    for t in &report.tenants {
        let what = match &t.outcome {
            migrate::Outcome::UpToDate => "up to date".to_string(),
            migrate::Outcome::Migrated { from } => format!("migrated from {from}"),
            migrate::Outcome::Failed(e) => format!("FAILED: {e}"),
        };
        println!("{:<40} {:<50} version {:<16} {what}", t.slug, t.placement.describe(), t.version);
    }
    let failures = report.failures();
    println!("{} tenants, {failures} failed", report.tenants.len());
    if failures > 0 {
        Err(format!("{failures} migration(s) failed; fix the cause and rerun `tessera-server migrate` to finish"))
    } else {
        Ok(())
    }
}

async fn backend(config: &Config) -> Result<Backend, String> {
    let pool = db::connect(&config.database_url, 4, config.topology.pgbouncer).await.map_err(|e| e.to_string())?;
    let mailer = tessera_backend::email::mailer(&config.email).map_err(|e| e.to_string())?;
    let secret = tessera_backend::secrets::SecretKey::new(config.secret_key.as_bytes()).map_err(|e| e.to_string())?;
    Backend::new(pool, &config.topology, secret, mailer, &config.public_url, config.oidc_providers.clone(), config.dns_server)
        .map_err(|e| e.to_string())
}

async fn list_tenants(config: &Config) -> Result<(), String> {
    let pool = db::connect(&config.database_url, 1, config.topology.pgbouncer).await.map_err(|e| e.to_string())?;
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT t.slug, t.model, t.region, t.status,
                CASE WHEN t.model = 'pooled' THEN COALESCE(p.version, 0) ELSE t.schema_version END
           FROM tenants t LEFT JOIN pooled_schemas p ON p.region = t.region ORDER BY t.slug",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    println!("{:<40} {:<10} {:<12} {:<10} version", "slug", "model", "region", "status");
    for (slug, model, region, status, version) in rows {
        println!("{slug:<40} {model:<10} {region:<12} {status:<10} {version}");
    }
    Ok(())
}

async fn move_command(config: &Config, slug: &str, model: &str, region: &str) -> Result<(), String> {
    let backend = backend(config).await?;
    // The audit record's request id names the operator, as the CLI has no logged-in user.
    let operator = format!("cli-move by {}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    let report = relocate::move_tenant(&backend.tenancy, slug, model, region, &operator).await.map_err(|e| match e {
        tessera_backend::Error::App(app) => app.to_string(),
        other => other.to_string(),
    })?;
    println!("moved {}: {} -> {}", report.slug, report.from.describe(), report.to.describe());
    for t in &report.tables {
        println!("  {:<24} {:>8} rows  checksum {}", t.table, t.rows, t.checksum);
    }
    if let Some(leftover) = report.leftover {
        println!("warning: {leftover}");
    }
    Ok(())
}

async fn abort_command(config: &Config, slug: &str) -> Result<(), String> {
    let backend = backend(config).await?;
    let back = relocate::abort_move(&backend.tenancy, slug).await.map_err(|e| match e {
        tessera_backend::Error::App(app) => app.to_string(),
        other => other.to_string(),
    })?;
    println!("aborted the move of {slug}; it is active again in {}", back.describe());
    Ok(())
}

async fn audit_verify(config: &Config, slug: Option<String>) -> Result<(), String> {
    let backend = backend(config).await?;
    let checked = tessera_backend::audit::verify(&backend.tenancy, slug.as_deref()).await.map_err(|e| match e {
        tessera_backend::Error::App(app) => app.to_string(),
        other => other.to_string(),
    })?;
    let mut broken = 0;
    for (slug, answer) in &checked {
        match answer {
            Ok(integrity) if integrity.verified() => println!("{slug}: verified, {} records", integrity.records),
            Ok(integrity) => {
                broken += 1;
                println!("{slug}: NOT VERIFIED, {} records, {} problem(s):", integrity.records, integrity.breaks.len());
                for problem in &integrity.breaks {
                    println!("  [{}] {}", problem.kind, problem.message);
                }
            }
            Err(e) => {
                broken += 1;
                println!("{slug}: COULD NOT BE CHECKED: {e}");
            }
        }
    }
    if broken > 0 {
        return Err(format!(
            "{broken} of {} organization(s) have audit records that were changed, removed or reordered, or couldn't be checked",
            checked.len()
        ));
    }
    Ok(())
}

async fn purge_command(config: &Config) -> Result<(), String> {
    let backend = backend(config).await?;
    let purged = lifecycle::purge_due(&backend.tenancy).await.map_err(|e| e.to_string())?;
    println!("purged {} organization(s){}{}", purged.len(), if purged.is_empty() { "" } else { ": " }, purged.join(", "));
    Ok(())
}

async fn jobs_command(config: &Config, args: &[String]) -> Result<(), String> {
    use tessera_backend::jobs::admin;
    let backend = backend(config).await?;
    let id = || -> Result<uuid::Uuid, String> {
        let raw = args.get(1).ok_or("name the job: its id, as `tessera-server jobs` lists it")?;
        raw.parse().map_err(|_| format!("{raw:?} is not a job id"))
    };
    match args.first().map(String::as_str) {
        None => {
            let counts = admin::counts(&backend).await.map_err(|e| e.to_string())?;
            println!("{:<32} {:<10} jobs", "kind", "state");
            for count in &counts {
                println!("{:<32} {:<10} {}", count.kind, count.status, count.jobs);
            }
            let dead = admin::dead(&backend, 20).await.map_err(|e| e.to_string())?;
            if !dead.is_empty() {
                println!("\nmost recent dead jobs (retry or discard them by id):");
                for job in dead {
                    let when = job.finished_at.map(|t| t.to_string()).unwrap_or_default();
                    println!("{}  {}  {} attempts  {when}\n    {}", job.id, job.kind, job.attempts, job.last_error.unwrap_or_default());
                }
            }
            Ok(())
        }
        Some("retry") => match admin::retry(&backend, id()?).await.map_err(|e| e.to_string())? {
            true => {
                println!("queued again");
                Ok(())
            }
            false => Err("no dead job has that id".into()),
        },
        Some("discard") => match admin::discard(&backend, id()?).await.map_err(|e| e.to_string())? {
            true => {
                println!("discarded");
                Ok(())
            }
            false => Err("no dead job has that id".into()),
        },
        Some("check") => {
            let probe = tessera_backend::jobs::probe::Probe { hold_ms: 0, fail_attempts: 0 };
            let id = admin::enqueue_probe(&backend, &probe).await.map_err(|e| e.to_string())?;
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_secs(60) {
                if admin::probe_ran(&backend, id).await.map_err(|e| e.to_string())? {
                    println!("a worker ran the probe job in {} ms", started.elapsed().as_millis());
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(format!("no worker ran the probe job {id} within 60 s: are workers running (TESSERA_JOB_WORKERS, or `tessera-server worker`)?"))
        }
        Some(_) => usage(),
    }
}

async fn billing_sync(config: &Config) -> Result<(), String> {
    // Needs only Stripe and the catalogue, not the database.
    let billing = tessera_backend::billing::Billing::new(&config.billing).map_err(|e| e.to_string())?;
    let stripe = billing.stripe().map_err(|_| "set TESSERA_STRIPE_SECRET_KEY to sync the catalogue to Stripe".to_string())?;
    let changes = tessera_backend::billing::sync::sync(stripe, billing.catalogue()).await.map_err(|e| e.to_string())?;
    for change in &changes {
        println!("{change}");
    }
    let changed = changes.iter().filter(|c| c.outcome != tessera_backend::billing::sync::Outcome::Unchanged).count();
    println!("{changed} change(s), {} unchanged", changes.len() - changed);
    Ok(())
}
