// m4fwd against hostile apps (issue 15): every attack of the security pass is a test here. Each
// runs the real daemon binary; attackers run as other uids where identity matters. None of these
// may hang the daemon, cost it more than the request's bounded share, or let one app read another.
#include "adversarial_fixture.h"


// Attack 1: a FIFO (or a socket whose peer stays open) passed as an input used to block the loop.
TEST_F(ServiceAdversarial, PipeSocketAndDeviceDescriptorsAreRefusedWithoutBlocking) {
    DaemonProcess d(fresh_dir("fifo"), fw_);
    ASSERT_TRUE(d.start());
    auto good = good_client(d);
    ASSERT_TRUE(good);
    std::string fifo = dir_ + "/fifo/in.fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0666), 0);
    int ff = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);  // RDWR: the writer end stays open, reads would block
    int sp[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    int zero = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
    auto attacker = client::Client::connect(d.socket(), 5000);
    ASSERT_TRUE(attacker.is_ok());
    for (int fd : {ff, sp[0], zero}) {
        auto t0 = std::chrono::steady_clock::now();
        auto r  = infer_fd(**attacker, fd, "image");
        ASSERT_TRUE(r.is_ok()) << r.status().message();
        EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT);
        EXPECT_NE(r->message().find("not a regular file"), std::string::npos) << r->message();
        EXPECT_LT(ms_since(t0), 2000);
    }
    // The daemon keeps serving everyone, and SIGTERM still stops it promptly.
    EXPECT_EQ(good->infer(imu_request("mine"))->status(), v1::STATUS_OK);
    EXPECT_TRUE(good->status().is_ok());
    auto t0 = std::chrono::steady_clock::now();
    int  st = d.kill(SIGTERM);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
    EXPECT_LT(ms_since(t0), 5000);
    for (int fd : {ff, sp[0], sp[1], zero}) ::close(fd);
}

// Attack 2: a client that pipelines requests and never reads its replies.
TEST_F(ServiceAdversarial, ClientThatNeverReadsIsDisconnectedAndStallsNobody) {
    DaemonProcess d(fresh_dir("noread"), fw_, R"({"max_output_bytes": 65536})");
    ASSERT_TRUE(d.start());
    auto good = good_client(d);
    ASSERT_TRUE(good);
    int bad = raw_connect(d.socket());
    ASSERT_GE(bad, 0);
    int small = 4096;
    ::setsockopt(bad, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ::fcntl(bad, F_SETFL, O_NONBLOCK);
    v1::Request status;
    status.mutable_get_status();
    std::string frame = wire::encode_frame(status.SerializeAsString());
    std::string burst;
    for (int i = 0; i < 200; ++i) burst += frame;
    // Write status requests (each answered with a few hundred bytes) for up to 3 s, never reading.
    bool cut = false;
    auto t0  = std::chrono::steady_clock::now();
    while (ms_since(t0) < 3000 && !cut) {
        ssize_t w = ::send(bad, burst.data(), burst.size(), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) cut = true;
        // Meanwhile the well-behaved app is answered quickly.
        auto t1 = std::chrono::steady_clock::now();
        auto r  = good->infer(imu_request("mine"));
        ASSERT_TRUE(r.is_ok());
        EXPECT_EQ(r->status(), v1::STATUS_OK);
        EXPECT_LT(ms_since(t1), 1000);
    }
    EXPECT_TRUE(cut) << "the daemon kept a client that read none of its replies";
    ::close(bad);
    t0     = std::chrono::steady_clock::now();
    int st = d.kill(SIGTERM);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    EXPECT_LT(ms_since(t0), 5000);
    EXPECT_NE(d.log().find("did not read"), std::string::npos);
}

namespace {
// A child process running as `uid` opens `n` raw connections and never sends a byte. It reports
// (through the returned pipe) how many are still open 200 ms later, holds them `hold_ms`, and
// exits with the number still open then.
struct Holder {
    pid_t pid   = -1;
    int   alive = -1;
    int   wait_exit() {
        int st = 0;
        ::waitpid(pid, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
};
Holder hold_connections(uid_t uid, const std::string & sock, int n, int hold_ms) {
    int p[2];
    if (::pipe(p) != 0) return {};
    Holder h;
    h.pid = ::fork();
    if (h.pid == 0) {
        ::close(p[0]);
        if (::setgid(uid) != 0 || ::setuid(uid) != 0) _exit(250);
        std::vector<int> fds;
        for (int i = 0; i < n; ++i) fds.push_back(raw_connect(sock));
        auto open_now = [&] {
            int k = 0;
            for (int fd : fds) {
                char    buf[512];
                ssize_t r = fd < 0 ? 0 : ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                while (r > 0) r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);  // a BUSY frame, then EOF
                k += (r < 0 && errno == EAGAIN);
            }
            return k;
        };
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        char alive = static_cast<char>(open_now());
        (void)::write(p[1], &alive, 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
        _exit(open_now());
    }
    ::close(p[1]);
    char alive = -1;
    if (::read(p[0], &alive, 1) == 1) h.alive = alive;
    ::close(p[0]);
    return h;
}

}  // namespace

// Attack 3: one uid holding every connection.
TEST_F(ServiceAdversarial, ConnectionCapsPerAppKeepOtherAppsAndTheAdminIn) {
    DaemonProcess d(fresh_dir("conns"), fw_,
                    R"({"max_connections": 6, "max_connections_per_app": 3, "frame_timeout_ms": 700})");
    ASSERT_TRUE(d.start());
    const std::string sock = d.socket();
    // App A tries to hold 10 silent connections: 3 are kept, the rest refused.
    Holder a = hold_connections(kAppA, sock, 10, 1500);
    EXPECT_EQ(a.alive, 3);
    // App B still gets in while A holds its share.
    EXPECT_EQ(as_uid(kAppB, [&] {
                  auto b = client::Client::connect(sock, 3000);
                  CHILD_CHECK(b.is_ok(), "another app connects");
                  CHILD_CHECK((*b)->status().is_ok(), "and is served");
                  return 0;
              }),
              0);
    // Silent connections are closed once they do not complete a frame in time.
    EXPECT_EQ(a.wait_exit(), 0) << "connections that never sent a frame are still open";

    // The global limit filled by two apps: a third app is refused, the admin still gets in.
    Holder a2 = hold_connections(kAppA, sock, 3, 1500);
    Holder b2 = hold_connections(kAppB, sock, 3, 1500);
    EXPECT_EQ(a2.alive, 3);
    EXPECT_EQ(b2.alive, 3);
    Holder c2 = hold_connections(kAppB + 1, sock, 1, 0);
    EXPECT_EQ(c2.alive, 0) << "the global limit did not hold";
    c2.wait_exit();
    auto admin = client::Client::connect(sock, 3000);
    ASSERT_TRUE(admin.is_ok()) << admin.status().message();
    auto s = (*admin)->status();
    ASSERT_TRUE(s.is_ok());
    EXPECT_EQ(s->status_reply().connections(), 7u);
    EXPECT_EQ(a2.wait_exit(), 0);
    EXPECT_EQ(b2.wait_exit(), 0);
    EXPECT_EQ((*admin)->status()->status_reply().connections(), 1u);
}

// Attack 4: inputs whose cost is far beyond their size on the wire.
TEST_F(ServiceAdversarial, InputsAreBoundedBeforeTheyCostMemoryOrTime) {
    DaemonProcess d(fresh_dir("costs"), fw_, R"({"max_queued_input_per_app": 8388608})");
    ASSERT_TRUE(d.start());
    auto good = good_client(d);
    ASSERT_TRUE(good);
    const long rss0 = d.status_kib("VmRSS");
    // A sparse regular file of 1 GiB: refused from its size, never read.
    std::string big = dir_ + "/costs/big.png";
    {
        int fd = ::open(big.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
        ASSERT_EQ(::ftruncate(fd, 1ll << 30), 0);
        ::close(fd);
    }
    int  fd = ::open(big.c_str(), O_RDONLY | O_CLOEXEC);
    auto r  = infer_fd(*good, fd, "image");
    ::close(fd);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_NE(r->message().find("bytes"), std::string::npos) << r->message();
    // A tiny PNG whose header claims 18000 x 18000 pixels: refused from the header, no decoding.
    std::string png("\x89PNG\r\n\x1a\n", 8);
    auto        be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
    std::string ihdr = "IHDR" + be32(18000) + be32(18000) + std::string("\x08\x02\x00\x00\x00", 5);
    uint32_t    crc  = 0xffffffffu;
    for (unsigned char ch : ihdr) {
        crc ^= ch;
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    png += be32(13) + ihdr + be32(~crc) + std::string(1000, '\0');
    v1::Infer img;
    img.add_inputs()->set_modality("image");
    img.mutable_inputs(0)->set_encoded(png);
    auto t0 = std::chrono::steady_clock::now();
    r       = good->infer(img);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_NE(r->message().find("18000x18000"), std::string::npos) << r->message();
    EXPECT_LT(ms_since(t0), 1000);
    // 10 MB of text: refused before tokenising.
    v1::Infer txt;
    txt.add_inputs()->set_text(std::string(10'000'000, 'a'));
    t0 = std::chrono::steady_clock::now();
    r  = good->infer(txt);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_NE(r->message().find("context"), std::string::npos) << r->message();
    EXPECT_LT(ms_since(t0), 2000);
    // Encoded bytes beyond what an IMU window can use, and a request whose inputs exceed the app's
    // queued-input bound (8 MiB here): clear refusals, not BUSY.
    v1::Infer csv;
    csv.add_inputs()->set_modality("imu");
    csv.mutable_inputs(0)->set_encoded(std::string(2 << 20, '1'));
    r = good->infer(csv);
    EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_NE(r->message().find("at most"), std::string::npos) << r->message();
    v1::Infer many;
    for (int i = 0; i < 8; ++i) {
        many.add_inputs()->set_modality("image");
        many.mutable_inputs(i)->set_encoded(std::string(1100000, 'c'));
    }
    r = good->infer(many);
    EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_NE(r->message().find("may queue at most"), std::string::npos) << r->message();
    const long rss1 = d.status_kib("VmRSS");
    // The refused inputs claimed 1 GiB and 18000² pixels (~1 GB decoded); what stays is at most the
    // frames that carried them (10 MB of text, 8.8 MB of images) and, under ASan, its quarantine.
    EXPECT_LT(rss1 - rss0, 128 * 1024) << "KiB of resident growth from refused inputs";
    EXPECT_EQ(good->infer(imu_request("mine"))->status(), v1::STATUS_OK);
}

TEST_F(ServiceAdversarial, HalfSentFramesAreBoundedPerAppAndTimeOut) {
    DaemonProcess d(fresh_dir("half"), fw_, R"({"max_buffered_input_per_app": 4194304, "frame_timeout_ms": 800})");
    ASSERT_TRUE(d.start());
    auto good = good_client(d);
    ASSERT_TRUE(good);
    std::vector<int> fds;
    std::string      chunk(1 << 20, 'x');
    uint32_t         len = 60u << 20;  // announces 60 MiB, sends 1.5 MiB of it per connection
    for (int i = 0; i < 4; ++i) {
        int fd = raw_connect(d.socket());
        ASSERT_GE(fd, 0);
        timeval tv{2, 0};  // blocking sends, but never stuck: the daemon may close the connection
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        ASSERT_EQ(::write(fd, &len, 4), 4);
        (void)::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
        (void)::send(fd, chunk.data(), chunk.size() / 2, MSG_NOSIGNAL);
        fds.push_back(fd);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // The root app's 4 connections together hold more than 4 MiB: the daemon closed at least one.
    auto s = good->status();
    ASSERT_TRUE(s.is_ok());
    EXPECT_LT(s->status_reply().connections(), 5u);
    EXPECT_NE(d.log().find("too much unfinished input"), std::string::npos);
    // And after the frame timeout none of the half-sent frames is held any more.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    for (int fd : fds) {
        char    c;
        ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
        while (n > 0) n = ::recv(fd, &c, 1, MSG_DONTWAIT);  // an error frame may come first
        EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << "still open";
        ::close(fd);
    }
    EXPECT_EQ(good->infer(imu_request("mine"))->status(), v1::STATUS_OK);
}
