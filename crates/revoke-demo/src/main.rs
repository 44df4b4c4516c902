//! The demo service: `cargo run -p revoke-demo` from the repository root (it reads
//! `Rocket.toml` there).

#[rocket::main]
async fn main() {
    if let Err(e) = revoke_demo::rocket().launch().await {
        // Rocket has logged the details (a launch error names the failing key or fairing).
        eprintln!("revoke-demo: {e}");
        std::process::exit(1);
    }
}
