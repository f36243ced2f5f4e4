use clap::Parser;

fn main() {
    let cli = jobtoken::cli::Cli::parse();
    if let Err(message) = jobtoken::cli::run(cli) {
        eprintln!("jobtoken: {message}");
        std::process::exit(1);
    }
}
