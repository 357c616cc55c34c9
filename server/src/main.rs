use tessera_server::{config::Config, run};

const USAGE: &str = "usage: tessera-server [serve | migrate]

  serve     (default) serve HTTP; configuration comes from the environment (see README)
  migrate   apply database migrations as DATABASE_OWNER_URL and exit
";

#[tokio::main]
async fn main() {
    tessera_server::init_tracing();
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    let result = match command.as_str() {
        "serve" => match Config::from_env() {
            Ok(config) => run(config).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        "migrate" => match std::env::var("DATABASE_OWNER_URL") {
            Ok(url) => tessera_backend::db::migrate(&url).await.map_err(|e| e.to_string()),
            Err(_) => Err("DATABASE_OWNER_URL must name the schema owner's connection".into()),
        },
        _ => {
            eprint!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("tessera-server: {e}");
        std::process::exit(1);
    }
}
