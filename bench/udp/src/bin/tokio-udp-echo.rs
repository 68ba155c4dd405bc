// cargo run --release --bin tokio-udp-echo -- --addr 127.0.0.1:19700
//! tokio's UDP echo, the way its docs write it: one socket, `recv_from`
//! then `send_to`, on a current-thread runtime (one core, like one netloom
//! loop).

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:19700".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--addr" => addr = args.next().expect("--addr needs a value"),
            other => panic!("unknown flag {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let socket = tokio::net::UdpSocket::bind(&addr).await?;
        println!("tokio-udp-echo: listening on {}", socket.local_addr()?);
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await?;
            socket.send_to(&buf[..n], from).await?;
        }
    })
}
