use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = jobtoken::cli::Cli::parse();
    if let Err(message) = jobtoken::cli::run(cli) {
        eprintln!("jobtoken: {message}");
        std::process::exit(1);
    }
}
