// SPDX-License-Identifier: GPL-2.0
/*
 * stasis-seal: encrypt a checkpoint image stream for the holders of one or
 * more X.509 certificates (--encrypt), or open a sealed stream with a
 * private key (--open). A filter: stdin to stdout, frame by frame; with
 * -D, the sealed checkpoint is stored in (--encrypt) or read from (--open)
 * a directory instead, which spares the pipeline a program and a pipe.
 *
 * A failure never ends the output with a trailer, so the next program of
 * the pipeline (stasis-inject, stasis-serialize unpack) sees a truncated
 * checkpoint and stores or restores nothing.
 */
#include <dirent.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/opts.h"
#include "stasis/util.h"
#include "stasis-image/image.h"
#include "stasis-seal/seal.h"

enum {
	OPT_ENCRYPT = 256,
	OPT_OPEN,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_REQUIRE_SEALED,
	OPT_THREADS,
	OPT_ACK_FD,
	OPT_LAZY_PAGES,
	OPT_READER_COPIES
};

static struct {
	int mode;
	const char **certs;
	int nr_certs;
	const char *key;
	bool require_sealed;
	const char *dir;
	int ack_fd;
	int threads;
	bool lazy; /* a lazy page stream: frames at any offset, each out at once */
	bool reader_copies;
} opts = { .ack_fd = -1, .threads = -1 };

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: stasis-seal --encrypt [--tls-cert CERT]... < STREAM > SEALED\n"
		"       stasis-seal --encrypt [--tls-cert CERT]... -D DIR [--ack-fd FD] < STREAM\n"
		"       stasis-seal --open [--tls-key KEY] [--require-sealed] [-D DIR\n"
		"                   [--reader-copies]] > STREAM\n"
		"Encrypt a checkpoint image stream for the holders of X.509 certificates, or\n"
		"open a sealed stream with a private key.\n\n"
		"Options:\n"
		"      --encrypt           seal the plaintext stream on stdin\n"
		"      --open              open the sealed stream on stdin; a stream that is\n"
		"                          not sealed passes unchanged\n"
		"      --tls-cert CERT     --encrypt: seal for the holder of this certificate\n"
		"                          (PEM or DER, RSA or ECDSA P-256); repeat for more\n"
		"                          recipients (default " SEAL_DEFAULT_CERT ")\n"
		"      --tls-key KEY       --open: the private key (PEM or DER) of a recipient\n"
		"                          (default " SEAL_DEFAULT_KEY ")\n"
		"      --require-sealed    --open: refuse a stream that is not sealed\n"
		"  -D, --images-dir DIR    --encrypt: store the sealed checkpoint in DIR, as\n"
		"                          stasis-serialize unpack does, instead of stdout;\n"
		"                          --open: read it from DIR instead of stdin\n"
		"      --reader-copies     --open -D: what reads stdout takes the data out of\n"
		"                          the pipe with read(2), never splice(2) or tee(2)\n"
		"                          (stasis-inject): page buffers are read into again\n"
		"                          once it has taken them, instead of new ones\n"
		"      --ack-fd FD         --encrypt -D: write \"OK\" to FD once the checkpoint\n"
		"                          is complete and durable, then close FD\n"
		"      --threads N         threads that en- or decrypt page frames besides the\n"
		"                          one that reads and writes (default: CPUs - 3, or\n"
		"                          CPUs - 2 with --open -D; 0 to 4); --encrypt -D\n"
		"                          with 0 (its default): one thread seals them in\n"
		"                          the directory writer's buffers\n"
		"      --lazy-pages        the stream of a lazy page server (stasis-collect\n"
		"                          --lazy-pages): page frames at any offset, each\n"
		"                          written out as soon as it is sealed or verified\n"
		"  -v, --verbosity[=N]     raise or set the log level (0-4)\n"
		"  -o, --log-file FILE     write log messages to FILE\n"
		"  -h, --help              show this help and exit\n"
		"  -V, --version           show the version and exit\n");
}

static int parse_opts(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "encrypt", no_argument, NULL, OPT_ENCRYPT },
		{ "open", no_argument, NULL, OPT_OPEN },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "require-sealed", no_argument, NULL, OPT_REQUIRE_SEALED },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "ack-fd", required_argument, NULL, OPT_ACK_FD },
		{ "lazy-pages", no_argument, NULL, OPT_LAZY_PAGES },
		{ "reader-copies", no_argument, NULL, OPT_READER_COPIES },
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{}
	};
	int c, verbosity = LOG_WARN;

	while ((c = getopt_long(argc, argv, "D:v::o:hV", lopts, NULL)) != -1) {
		switch (c) {
		case OPT_ENCRYPT:
		case OPT_OPEN:
			if (opts.mode && opts.mode != c) {
				pr_err("--encrypt and --open exclude each other");
				return -1;
			}
			opts.mode = c;
			break;
		case OPT_TLS_CERT:
			opts.certs =
			    xrealloc(opts.certs, (opts.nr_certs + 1) * sizeof(*opts.certs));
			opts.certs[opts.nr_certs++] = optarg;
			break;
		case OPT_TLS_KEY:
			opts.key = optarg;
			break;
		case OPT_REQUIRE_SEALED:
			opts.require_sealed = true;
			break;
		case 'D':
			opts.dir = optarg;
			break;
		case OPT_ACK_FD:
			if (opt_fd("--ack-fd", optarg, &opts.ack_fd))
				return -1;
			break;
		case OPT_LAZY_PAGES:
			opts.lazy = true;
			break;
		case OPT_READER_COPIES:
			opts.reader_copies = true;
			break;
		case OPT_THREADS:
			if (opt_int("--threads", optarg, 0, 256, "0 to 256", &opts.threads))
				return -1;
			break;
		case 'v':
			if (opt_verbosity(optarg, verbosity, &verbosity))
				return -1;
			log_set_level(verbosity);
			break;
		case 'o':
			if (log_set_file(optarg)) {
				pr_perror("cannot open log file %s", optarg);
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			print_version("stasis-seal");
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return -1;
	}
	if (!opts.mode) {
		pr_err("give --encrypt or --open");
		usage(stderr);
		return -1;
	}
	if (opts.mode == OPT_ENCRYPT && (opts.key || opts.require_sealed)) {
		pr_err("--tls-key and --require-sealed are options of --open");
		return -1;
	}
	if (opts.ack_fd >= 0 && (opts.mode != OPT_ENCRYPT || !opts.dir)) {
		pr_err("--ack-fd is an option of --encrypt -D");
		return -1;
	}
	if (opts.lazy && opts.dir) {
		pr_err("--lazy-pages is for streams, not for -D");
		return -1;
	}
	if (opts.reader_copies && (opts.mode != OPT_OPEN || !opts.dir)) {
		pr_err("--reader-copies is an option of --open -D");
		return -1;
	}
	if (opts.mode == OPT_OPEN && opts.nr_certs) {
		pr_err("--tls-cert is an option of --encrypt");
		return -1;
	}
	return 0;
}

static void flush_pages(void *u)
{
	imgunpack_page_flush(u);
}

/* The sealing set up once the input shows it is a stream; with u (-D and
 * no threads), page frames are sealed in the page write buffers by a
 * thread of the directory writer, while this one reads on: the crypto
 * leaves the thread that the pipe from collect waits for. */
static struct seal_enc *enc_start(struct img_reader *r, struct img_writer *w, struct img_unpack *u)
{
	static const char *const def[] = { SEAL_DEFAULT_CERT };
	struct seal_enc *e;
	struct img_frame f;

	/* the input must be a stream before anything is written */
	if (imgr_next(r, &f) <= 0)
		return NULL;
	e = seal_enc_create(opts.nr_certs ? opts.certs : def, opts.nr_certs ? opts.nr_certs : 1, w,
			    opts.threads);
	if (!e)
		return NULL;
	if (opts.lazy)
		seal_enc_any_order(e);
	if (u) {
		seal_enc_in_place(e, flush_pages, u);
		imgunpack_page_hook(u, seal_enc_page_hook, e);
	}
	return e;
}

static int enc_run(struct seal_enc *e, struct img_reader *r, struct img_writer *w)
{
	struct img_frame f;
	int n;

	while ((n = imgr_next(r, &f)) > 0)
		if (seal_enc_put(e, &f))
			return -1;
	return n == 0 && !seal_enc_finish(e) && !imgw_finish(w) ? 0 : -1;
}

static int do_encrypt(struct img_reader *r, struct img_writer *w)
{
	struct seal_enc *e = enc_start(r, w, NULL);
	int ret = e ? enc_run(e, r, w) : -1;

	seal_enc_free(e);
	return ret;
}

static int out_frame(void *arg, const struct img_frame *f)
{
	return imgw_frame(arg, f);
}

/* --lazy-pages: every frame out as it is made, for a reader that waits
 * for that very page. */
static int write_now(void *arg, const struct img_frame *f)
{
	struct stasis_frame_hdr hdr = f->hdr;
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { f->data, f->hdr.len } };

	(void)arg;
	if (writev_full(STDOUT_FILENO, iov, f->hdr.len ? 2 : 1)) {
		pr_perror("cannot write the stream");
		return -1;
	}
	return 0;
}

static int do_open(struct img_reader *r, struct img_writer *w)
{
	const char *key = opts.key ? opts.key : SEAL_DEFAULT_KEY;
	struct seal_open *o;
	struct img_frame f;
	int n, ret = -1;

	n = imgr_next(r, &f); /* the head */
	if (n <= 0)
		return -1;
	n = imgr_next(r, &f);
	if (n < 0)
		return -1;
	if (n == 0 || f.hdr.kind != FRAME_IMAGE || strcmp(f.image, "cipher")) {
		if (opts.require_sealed) {
			pr_err("the checkpoint is not sealed, and --require-sealed was given");
			return -1;
		}
		pr_info("the checkpoint is not sealed: passing it through");
		for (; n > 0; n = imgr_next(r, &f)) {
			if (f.hdr.kind == FRAME_IMAGE && seal_image_reserved(f.image)) {
				pr_err(
				    "the checkpoint holds image %s but no cipher image: a sealed "
				    "checkpoint that lost its cipher image",
				    f.image);
				return -1;
			}
			if (imgw_frame(w, &f))
				return -1;
		}
		return n < 0 || imgw_finish(w) ? -1 : 0;
	}
	o = seal_open_create(key, opts.lazy ? SEAL_OPEN_ANY_ORDER : 0, out_frame, w);
	if (!o)
		return -1;
	seal_open_threads(o, opts.threads);
	for (; n > 0; n = imgr_next(r, &f))
		if (seal_open_put(o, &f))
			goto out;
	if (n < 0)
		goto out;
	if (f.hdr.flags || f.hdr.image || f.hdr.offset) {
		pr_err("sealed checkpoint: trailer altered");
		goto out;
	}
	if (!seal_open_finish(o) && !imgw_finish(w))
		ret = 0;
out:
	seal_open_free(o);
	return ret;
}

/* A directory without cipher.img but with images only a sealed checkpoint
 * has: a sealed checkpoint that lost its cipher image. */
static int dir_lost_cipher(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	int ret = 0;

	if (!dp) {
		pr_perror("cannot open images directory %s", dir);
		return -1;
	}
	while ((de = readdir(dp))) {
		char name[STASIS_IMAGE_NAME_MAX];

		if (img_file_name(de->d_name, name) && seal_image_reserved(name)) {
			pr_err("%s holds %s but no cipher.img: a sealed checkpoint that lost its "
			       "cipher image",
			       dir, de->d_name);
			ret = -1;
			break;
		}
	}
	closedir(dp);
	return ret;
}

/* --open -D DIR: the directory read here, without a stasis-serialize pack
 * and a pipe in front of us. */
static int do_open_dir(struct img_writer *w)
{
	const char *key = opts.key ? opts.key : SEAL_DEFAULT_KEY;
	struct seal_open *o;
	int ret = -1, sealed = seal_dir_sealed(opts.dir);

	if (sealed < 0)
		return -1;
	if (opts.reader_copies)
		imgw_reader_copies(w);
	if (!sealed) {
		if (opts.require_sealed) {
			pr_err("the checkpoint in %s is not sealed, and --require-sealed was given",
			       opts.dir);
			return -1;
		}
		if (dir_lost_cipher(opts.dir))
			return -1;
		pr_info("the checkpoint in %s is not sealed: passing it through", opts.dir);
		return imgdir_pack(opts.dir, w) || imgw_finish(w) ? -1 : 0;
	}
	o = seal_open_create(key, 0, out_frame, w);
	if (!o)
		return -1;
	seal_open_threads(o, opts.threads);
	if (opts.reader_copies)
		seal_open_recycle(o, w);
	if (!seal_open_put_dir(o, opts.dir) && !seal_open_finish(o) && !imgw_finish(w))
		ret = 0;
	seal_open_free(o);
	return ret;
}

/* --encrypt -D DIR: stored as stasis-serialize unpack stores a stream. */
static int do_encrypt_dir(struct img_reader *r)
{
	struct img_unpack *u = imgunpack_open(opts.dir);
	struct img_writer *w;
	struct seal_enc *e;
	int ret = -1;

	if (!u)
		return -1;
	w = imgw_open_sink(imgunpack_put, u);
	/* page frames read straight into the page write buffers, sealed in
	 * place there; not with threads, whose jobs hold frames in flight */
	if (!opts.threads)
		imgr_set_room(r, imgunpack_page_room, u);
	e = enc_start(r, w, opts.threads ? NULL : u);
	if (e && !enc_run(e, r, w) && !imgunpack_commit(u))
		ret = img_ack(opts.ack_fd);
	imgw_free(w);
	/* its threads stopped first: they may still be sealing pages of e */
	imgunpack_free(u);
	seal_enc_free(e);
	return ret;
}

int main(int argc, char **argv)
{
	bool to_dir;
	struct img_reader *r;
	struct img_writer *w = NULL;
	int ret;

	log_init(argv[0]);
	if (parse_opts(argc, argv))
		return 1;
	to_dir = opts.mode == OPT_ENCRYPT && opts.dir;
	if (!to_dir && isatty(STDOUT_FILENO)) {
		pr_err("the output is a binary image stream; redirect stdout to a file or a pipe");
		return 1;
	}
	/* one frame at a time, in order: no frame waits for the next ones */
	if (opts.lazy)
		opts.threads = 0;
	if (opts.threads < 0 && to_dir) {
		/* sealed in place by one thread, which keeps up with the pipe
		 * without a copy; the pool's threads copy every frame twice */
		opts.threads = 0;
	} else if (opts.threads < 0) {
		/* The programs before and after us in the pipeline keep a CPU
		 * busy each: only the CPUs beyond three (two when we read the
		 * directory ourselves) help (docs/seal.md). */
		long n = sysconf(_SC_NPROCESSORS_ONLN) - (opts.dir ? 2 : 3);

		opts.threads = n < 0 ? 0 : n > 4 ? 4 : n;
	}
	signal(SIGPIPE, SIG_IGN);
	pipe_grow(STDIN_FILENO);
	r = imgr_open(STDIN_FILENO, opts.mode == OPT_ENCRYPT ? "input stream" : "sealed stream");
	if (to_dir) {
		ret = do_encrypt_dir(r);
	} else {
		pipe_grow(STDOUT_FILENO);
		w = opts.lazy ? imgw_open_sink(write_now, NULL) : imgw_open(STDOUT_FILENO);
		if (opts.mode == OPT_ENCRYPT)
			ret = do_encrypt(r, w);
		else
			ret = opts.dir ? do_open_dir(w) : do_open(r, w);
	}
	/* On failure the acknowledgement fd is closed without a word. */
	if (opts.ack_fd >= 0)
		close(opts.ack_fd);
	imgw_free(w);
	imgr_free(r);
	free(opts.certs);
	return ret ? 1 : 0;
}
