//! Prints generated records as NDJSON: `cargo run -p eventgen --example gen -- [EVENTS] [SEED]`.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let events = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let seed = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let opts = eventgen::GenOptions { events, seed, ..Default::default() };
    let stdout = std::io::stdout();
    eventgen::write_ndjson(&opts, &mut stdout.lock())?;
    Ok(())
}
