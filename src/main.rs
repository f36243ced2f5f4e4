use clap::Parser;

/// mimalloc instead of glibc's allocator: under load glibc's malloc/free (with
/// `malloc_consolidate`) took about a tenth of every hot path's CPU in `perf` (README,
/// "Performance"); mimalloc's per-thread free lists take a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = jobtoken::cli::Cli::parse();
    if let Err(message) = jobtoken::cli::run(cli) {
        eprintln!("jobtoken: {message}");
        std::process::exit(1);
    }
}
