// SPDX-License-Identifier: GPL-2.0
/*
 * stasis-serialize: convert a checkpoint between its two forms, the image
 * stream (stdin/stdout) and a directory of NAME.img files, and show either
 * form, or a single image file, as JSON.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/opts.h"
#include "stasis/util.h"
#include "stasis-image/image.h"
#include "stasis-seal/seal.h"
#include "json.h"
#include "chain.h"
#include "chainstream.h"

enum {
	OPT_ACK_FD = 256,
	OPT_TLS_KEY,
	OPT_VERBOSITY,
	OPT_CHAIN_FD,
	OPT_REQUIRE_SEALED,
	OPT_CHAIN,
	OPT_LAZY_PAGES,
	OPT_LAZY_REQ_FD,
	OPT_LAZY_RESP_FD,
	OPT_READER_COPIES,
};

static const struct option long_opts[] = {
	{ "images-dir", required_argument, NULL, 'D' },
	{ "ack-fd", required_argument, NULL, OPT_ACK_FD },
	{ "input", required_argument, NULL, 'i' },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "chain-fd", required_argument, NULL, OPT_CHAIN_FD },
	{ "require-sealed", no_argument, NULL, OPT_REQUIRE_SEALED },
	{ "chain", no_argument, NULL, OPT_CHAIN },
	{ "lazy-pages", no_argument, NULL, OPT_LAZY_PAGES },
	{ "lazy-req-fd", required_argument, NULL, OPT_LAZY_REQ_FD },
	{ "lazy-resp-fd", required_argument, NULL, OPT_LAZY_RESP_FD },
	{ "reader-copies", no_argument, NULL, OPT_READER_COPIES },
	{ "verbosity", required_argument, NULL, OPT_VERBOSITY },
	{ "log-file", required_argument, NULL, 'o' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %1$s unpack -D DIR [--ack-fd FD]\n"
		"       %1$s pack -D DIR [--chain | --lazy-pages] [--reader-copies]\n"
		"       %1$s show [-i FILE | -D DIR | FILE | -] [--tls-key KEY]\n"
		"       %1$s dedup -D DIR\n"
		"       %1$s chain [--tls-key KEY] [--require-sealed] [--chain-fd FD]\n"
		"             [--lazy-pages --lazy-req-fd FD --lazy-resp-fd FD]\n"
		"\n"
		"Convert a stasis checkpoint between its image stream and its directory form,\n"
		"and show a stream, a directory or one image file as JSON.\n"
		"\n"
		"Commands:\n"
		"  unpack   read an image stream on stdin and store it in DIR, one NAME.img\n"
		"           per image; the files are fsynced before the acknowledgement\n"
		"  pack     write the checkpoint stored in DIR to stdout as an image stream\n"
		"  show     print a stream (FILE or stdin), one image file or a whole DIR\n"
		"           as JSON on stdout\n"
		"  dedup    punch out of the parent links of DIR (an iterative chain) the\n"
		"           pages DIR holds again; only DIR restores whole afterwards\n"
		"  chain    read an iterative chain as one stream on stdin (its links,\n"
		"           oldest first, each a whole stream, plain or sealed), check\n"
		"           each link, keep them in memory (/dev/shm) and write the last\n"
		"           one resolved against the others to stdout as a whole stream\n"
		"\n"
		"Options:\n"
		"  -D, --images-dir DIR    directory that holds the image files\n"
		"      --ack-fd FD         unpack: write \"OK\" to FD once the checkpoint is\n"
		"                          complete and durable, then close FD\n"
		"  -i, --input FILE        show: read FILE instead of stdin\n"
		"      --tls-key KEY       show, chain: private key that opens a sealed\n"
		"                          checkpoint (default " SEAL_DEFAULT_KEY ")\n"
		"      --require-sealed    chain: refuse a link that is not sealed\n"
		"      --chain             pack: DIR and its parent links, oldest first, each a\n"
		"                          stream as stored: the chain as one stream\n"
		"      --lazy-pages        pack, chain: for stasis-inject --lazy-pages: the\n"
		"                          pages its daemon fills are not streamed; pack:\n"
		"                          the daemon reads them from DIR; chain: from us\n"
		"      --reader-copies     pack: what reads stdout takes the data out of the\n"
		"                          pipe with read(2), never splice(2) or tee(2)\n"
		"                          (stasis-inject): page buffers are read into again\n"
		"                          once it has taken them, instead of new ones\n"
		"      --lazy-req-fd FD    chain --lazy-pages: the daemon's page requests\n"
		"      --lazy-resp-fd FD   chain --lazy-pages: its pages, until every one is in\n"
		"      --chain-fd FD       chain: the links come from stasis-transfer\n"
		"                          --chain-fd, one sender each; after each link say\n"
		"                          MORE or LAST on FD, and restore only after SENT\n"
		"  -v[v...], -vN, --verbosity N\n"
		"                          log level: 0 none, 1 errors, 2 warnings (default),\n"
		"                          3 info, 4 debug; each v raises it by one\n"
		"  -o, --log-file FILE     append the log to FILE (stderr keeps errors)\n"
		"  -h, --help              show this help and exit\n"
		"  -V, --version           show the version and exit\n"
		"\n"
		"Exit status: 0 on success, 1 on any error.\n",
		log_prog());
}

static int set_verbosity(const char *arg)
{
	int level;

	if (opt_verbosity(arg, log_get_level(), &level))
		return -1;
	log_set_level(level);
	return 0;
}

/* ---- unpack ---- */

static int cmd_unpack(const char *dir, int ack_fd)
{
	struct img_unpack *u = NULL;
	struct img_reader *r = NULL;
	struct img_frame f;
	int ret = -1, n;

	pipe_grow(0);
	if (isatty(0)) {
		pr_err("unpack reads an image stream on stdin, which is a terminal");
		goto out;
	}
	u = imgunpack_open(dir);
	if (!u)
		goto out;
	r = imgr_open(0, "stdin");
	/* page data read straight into the page write buffers */
	imgr_set_room(r, imgunpack_page_room, u);
	while ((n = imgr_next(r, &f)) == 1)
		if (imgunpack_put(u, &f))
			break;
	if (n != 0 || imgunpack_commit(u))
		goto out;
	ret = img_ack(ack_fd);
out:
	/* On failure the acknowledgement channel is closed without a word:
	 * the dumper resumes the tree. */
	if (ack_fd >= 0)
		close(ack_fd);
	imgr_free(r);
	imgunpack_free(u);
	return ret;
}

/* ---- pack ---- */

/*
 * pack --chain: DIR and the links its parent symlinks lead to, oldest
 * first, each a whole stream of its own as stored (sealed links stay
 * sealed): the one-stream form of the chain that stasis-serialize chain
 * reads.
 */
static int pack_chain(const char *dir)
{
	char *links[64];
	int nr = 0, ret = -1;
	struct stat st;

	links[nr++] = xstrdup(dir);
	for (;;) {
		char *parent = xmalloc(strlen(links[nr - 1]) + 8);

		sprintf(parent, "%s/parent", links[nr - 1]);
		if (lstat(parent, &st)) {
			free(parent);
			break;
		}
		if (nr == 64) {
			pr_err("%s: more than 64 links in the chain of parents", dir);
			free(parent);
			goto out;
		}
		links[nr++] = parent;
	}
	for (int i = nr - 1; i >= 0; i--) {
		struct img_writer *w = imgw_open(1);
		int err = imgdir_pack_link(links[i], w) || imgw_finish(w);

		imgw_free(w);
		if (err)
			goto out;
	}
	pr_info("%s: a chain of %d link%s packed as one stream", dir, nr, nr == 1 ? "" : "s");
	ret = 0;
out:
	for (int i = 0; i < nr; i++)
		free(links[i]);
	return ret;
}

static int cmd_pack(const char *dir, bool chain, bool lazy, bool reader_copies)
{
	struct img_writer *w;
	int ret;

	if (isatty(1)) {
		pr_err("pack writes a binary image stream; redirect stdout to a file or a pipe");
		return -1;
	}
	pipe_grow(1);
	if (chain)
		return pack_chain(dir);
	w = imgw_open(1);
	if (reader_copies)
		imgw_reader_copies(w);
	/* a write error (EPIPE included: SIGPIPE is ignored) is reported once,
	 * by the writer, and fails every later call */
	ret = (lazy ? imgdir_pack_lazy(dir, w) : imgdir_pack(dir, w)) || imgw_finish(w) ? -1 : 0;
	imgw_free(w);
	return ret;
}

/* ---- show ---- */

static int show_record(struct json *j, const char *where, const char *image, unsigned idx,
		       const void *data, size_t len)
{
	const ProtobufCMessageDescriptor *desc = img_record_desc(image, idx);
	ProtobufCMessage *m;

	if (!desc) {
		json_obj_begin(j);
		json_key(j, "raw");
		json_hex(j, data, len);
		json_obj_end(j);
		return 0;
	}
	m = protobuf_c_message_unpack(desc, NULL, len, data);
	if (!m) {
		pr_err("%s: record %u of image %s does not decode as %s", where, idx, image,
		       desc->name);
		return -1;
	}
	json_message(j, m);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

/* The record image in fd (after nothing was read from it) as one object. */
static int show_record_file(struct json *j, int fd, const char *path, const char *image)
{
	char magic[8];
	void *buf = NULL;
	size_t buf_size = 0;
	int ret = -1;

	if (read_full(fd, magic, 8) != 8 || memcmp(magic, STASIS_IMG_MAGIC, 8)) {
		pr_err("%s: not a stasis image file", path);
		return -1;
	}
	json_obj_begin(j);
	json_key(j, "image");
	json_str(j, image);
	json_key(j, "records");
	json_arr_begin(j, false);
	for (unsigned idx = 0;; idx++) {
		uint32_t len;
		ssize_t n = read_full(fd, &len, 4);

		if (n < 0) {
			pr_perror("cannot read %s", path);
			goto out;
		}
		if (n == 0)
			break;
		if (n != 4) {
			pr_err("%s: truncated: record %u has a partial length", path, idx);
			goto out;
		}
		if (len > STASIS_FRAME_MAX) {
			pr_err("%s: record %u claims %u bytes (corrupted file)", path, idx, len);
			goto out;
		}
		if (len > buf_size) {
			free(buf);
			buf_size = len < 65536 ? 65536 : len;
			buf = xmalloc(buf_size);
		}
		n = read_full(fd, buf, len);
		if (n < 0) {
			pr_perror("cannot read %s", path);
			goto out;
		}
		if (n != (ssize_t)len) {
			pr_err("%s: truncated: record %u is cut short", path, idx);
			goto out;
		}
		if (show_record(j, path, image, idx, buf, len))
			goto out;
	}
	json_arr_end(j);
	json_obj_end(j);
	ret = 0;
out:
	free(buf);
	return ret;
}

static int show_pages_file(struct json *j, int fd, const char *path, const char *image)
{
	struct stat st;
	uint64_t bytes = 0;

	if (fstat(fd, &st)) {
		pr_perror("cannot stat %s", path);
		return -1;
	}
	if (S_ISREG(st.st_mode)) {
		bytes = st.st_size;
	} else {
		char buf[65536];
		ssize_t n;

		while ((n = read_full(fd, buf, sizeof(buf))) > 0)
			bytes += n;
		if (n < 0) {
			pr_perror("cannot read %s", path);
			return -1;
		}
	}
	json_obj_begin(j);
	json_key(j, "image");
	json_str(j, image);
	json_key(j, "bytes");
	json_u64(j, bytes);
	json_obj_end(j);
	return 0;
}

/* Opens an image file without blocking on FIFOs; only regular files. */
static int open_image(int dirfd, const char *fname, const char *path)
{
	struct stat st;
	int fd = openat(dirfd, fname, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		pr_err("%s: not a regular file", path);
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, 0);
	return fd;
}

static int show_dir_sealed(struct json *j, const char *dir, const char *only,
			   const char *tls_key);

static int show_dir(struct json *j, const char *dir, const char *tls_key)
{
	char **names = NULL, name[STASIS_IMAGE_NAME_MAX], path[PATH_MAX];
	size_t nr = 0;
	struct dirent *de;
	int dirfd, ret = -1;
	DIR *dp;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		pr_perror("cannot open images directory %s", dir);
		return -1;
	}
	dp = fdopendir(dup(dirfd));
	if (!dp) {
		pr_perror("cannot read images directory %s", dir);
		close(dirfd);
		return -1;
	}
	while ((de = readdir(dp))) {
		if (!img_file_name(de->d_name, name))
			continue;
		names = xrealloc(names, (nr + 1) * sizeof(*names));
		names[nr++] = xstrdup(name);
	}
	closedir(dp);
	if (!nr) {
		pr_err("%s holds no image files", dir);
		goto out;
	}
	qsort(names, nr, sizeof(*names), img_pack_cmp);
	if (!strcmp(names[0], "cipher")) {
		ret = show_dir_sealed(j, dir, NULL, tls_key);
		goto out;
	}
	json_arr_begin(j, false);
	for (size_t i = 0; i < nr; i++) {
		char fname[STASIS_IMAGE_NAME_MAX + 4];
		int fd, err;

		snprintf(fname, sizeof(fname), "%s.img", names[i]);
		snprintf(path, sizeof(path), "%s/%s", dir, fname);
		fd = open_image(dirfd, fname, path);
		if (fd < 0)
			goto out;
		err = img_is_pages(names[i]) ? show_pages_file(j, fd, path, names[i])
					     : show_record_file(j, fd, path, names[i]);
		close(fd);
		if (err)
			goto out;
	}
	json_arr_end(j);
	ret = 0;
out:
	for (size_t i = 0; i < nr; i++)
		free(names[i]);
	free(names);
	close(dirfd);
	return ret;
}

/* An image stream as an array of image objects. Frames of one image that
 * come in several runs give one object per run. */
struct show_stream {
	struct json *j;
	const char *what;
	bool opened; /* the array is open */
	int64_t cur; /* image id whose object is open, -1 for none */
	bool cur_pages;
	uint64_t bytes;
	unsigned *nr_records; /* per image id */
	uint32_t nr_images;
};

static void stream_close_image(struct show_stream *s)
{
	if (s->cur < 0)
		return;
	if (s->cur_pages) {
		json_key(s->j, "bytes");
		json_u64(s->j, s->bytes);
	} else {
		json_arr_end(s->j);
	}
	json_obj_end(s->j);
	s->cur = -1;
}

/* Nothing is printed before the input is known to be a plain stream. */
static void stream_begin(struct show_stream *s)
{
	if (!s->opened)
		json_arr_begin(s->j, false);
	s->opened = true;
}

static void stream_open_image(struct show_stream *s, const struct img_frame *f)
{
	stream_begin(s);
	if (s->cur == f->hdr.image)
		return;
	stream_close_image(s);
	s->cur = f->hdr.image;
	s->cur_pages = img_is_pages(f->image);
	s->bytes = 0;
	json_obj_begin(s->j);
	json_key(s->j, "image");
	json_str(s->j, f->image);
	if (!s->cur_pages) {
		json_key(s->j, "records");
		json_arr_begin(s->j, false);
	}
}

/*
 * Sealed checkpoints (a cipher image first): stasis-seal's core opens them
 * with the --tls-key private key (default /etc/pki/stasis/private/key.pem),
 * checks everything, and hands over the plaintext frames, shown as those
 * of a plain stream.
 */
struct sealed_show {
	struct show_stream *s;
	const char *only; /* one image file of a sealed directory */
};

static int sealed_frame(void *arg, const struct img_frame *f)
{
	struct sealed_show *ss = arg;
	struct show_stream *s = ss->s;

	if (ss->only && strcmp(f->image, ss->only))
		return 0;
	if (f->hdr.image >= s->nr_images) {
		s->nr_records = xrealloc(s->nr_records, (f->hdr.image + 1) * sizeof(*s->nr_records));
		memset(s->nr_records + s->nr_images, 0,
		       (f->hdr.image + 1 - s->nr_images) * sizeof(*s->nr_records));
		s->nr_images = f->hdr.image + 1;
	}
	stream_open_image(s, f);
	if (f->hdr.kind == FRAME_RECORD)
		return show_record(s->j, s->what, f->image, s->nr_records[f->hdr.image]++, f->data,
				   f->hdr.len);
	if (f->hdr.kind == FRAME_PAGES)
		s->bytes += f->hdr.len;
	return 0;
}

static const char *seal_key(const char *tls_key)
{
	return tls_key ? tls_key : SEAL_DEFAULT_KEY;
}

/* The rest of a sealed stream, from its cipher image declaration in *f. */
static int show_stream_sealed(struct show_stream *s, struct img_reader *r, struct img_frame *f,
			      const char *tls_key)
{
	struct sealed_show ss = { .s = s };
	struct seal_open *o = seal_open_create(seal_key(tls_key), 0, sealed_frame, &ss);
	int n = 1, ret = -1;

	if (!o)
		return -1;
	for (; n > 0; n = imgr_next(r, f))
		if (seal_open_put(o, f))
			goto out;
	if (n < 0 || seal_open_finish(o))
		goto out;
	stream_begin(s);
	stream_close_image(s);
	json_arr_end(s->j);
	ret = 0;
out:
	seal_open_free(o);
	return ret;
}

/* A sealed directory, or only the image 'only' of it (as one object). */
static int show_dir_sealed(struct json *j, const char *dir, const char *only,
			   const char *tls_key)
{
	struct show_stream s = { .j = j, .what = dir, .cur = -1, .opened = only != NULL };
	struct sealed_show ss = { .s = &s, .only = only };
	int ret = seal_open_dir(dir, seal_key(tls_key), 0, sealed_frame, &ss);

	if (!ret) {
		stream_begin(&s);
		stream_close_image(&s);
		if (!only)
			json_arr_end(j);
	}
	free(s.nr_records);
	return ret;
}

static int show_stream(struct json *j, int fd, const char *what, const char *tls_key)
{
	struct show_stream s = { .j = j, .what = what, .cur = -1 };
	struct img_reader *r = imgr_open(fd, what);
	struct img_frame f;
	int n, ret = -1;

	while ((n = imgr_next(r, &f)) == 1) {
		switch (f.hdr.kind) {
		case FRAME_HEAD:
			break;
		case FRAME_IMAGE:
			if (!strcmp(f.image, "cipher")) {
				ret = show_stream_sealed(&s, r, &f, tls_key);
				goto out;
			}
			s.nr_records = xrealloc(s.nr_records,
						(s.nr_images + 1) * sizeof(*s.nr_records));
			s.nr_records[s.nr_images++] = 0;
			stream_open_image(&s, &f);
			break;
		case FRAME_RECORD:
			if (f.hdr.image >= s.nr_images)
				goto bad_frame;
			stream_open_image(&s, &f);
			if (show_record(j, what, f.image, s.nr_records[f.hdr.image]++, f.data,
					f.hdr.len))
				goto out;
			break;
		case FRAME_PAGES:
			stream_open_image(&s, &f);
			s.bytes += f.hdr.len;
			break;
		default:
			goto bad_frame;
		}
	}
	if (n)
		goto out;
	stream_begin(&s);
	stream_close_image(&s);
	json_arr_end(j);
	ret = 0;
	goto out;
bad_frame:
	pr_err("%s: frame %llu of image %s has kind %u, which show cannot decode", what,
	       (unsigned long long)f.hdr.seq, f.image ? f.image : "?", f.hdr.kind);
out:
	free(s.nr_records);
	imgr_free(r);
	return ret;
}

/* show -i FILE / FILE / stdin: a stream, or one NAME.img of a directory. */
static int show_input(struct json *j, const char *input, const char *tls_key)
{
	const char *what = input ? input : "stdin";
	char name[STASIS_IMAGE_NAME_MAX] = "";
	char magic[8];
	struct stat st;
	int fd = 0, ret = -1;

	if (input) {
		fd = open(input, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("cannot open %s", input);
			return -1;
		}
		const char *base = strrchr(input, '/');

		img_file_name(base ? base + 1 : input, name);
	} else if (isatty(0)) {
		pr_err("no input: give -i FILE or -D DIR, or a stream on stdin");
		return -1;
	}
	if (fstat(fd, &st)) {
		pr_perror("cannot stat %s", what);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = show_dir(j, input, tls_key);
		goto out;
	}
	if (*name && img_is_pages(name)) {
		ret = show_pages_file(j, fd, what, name);
		goto out;
	}
	/* A regular file can be looked at before it is read: a record image
	 * starts with its own magic; anything else must be a stream. */
	if (pread(fd, magic, 8, 0) == 8 && !memcmp(magic, STASIS_IMG_MAGIC, 8)) {
		if (!*name) {
			pr_err("%s is a single record image: give it as -i NAME.img", what);
			goto out;
		}
		/* an encrypted image of a sealed directory: open the directory */
		if (strcmp(name, "cipher") && strncmp(name, "pagetags-", 9)) {
			char dir[PATH_MAX];
			const char *slash = strrchr(input, '/');

			snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - input) : 1,
				 slash ? input : ".");
			if (!dir[0])
				strcpy(dir, "/");
			if (seal_dir_sealed(dir) == 1) {
				ret = show_dir_sealed(j, dir, name, tls_key);
				goto out;
			}
		}
		ret = show_record_file(j, fd, what, name);
		goto out;
	}
	ret = show_stream(j, fd, what, tls_key);
out:
	if (fd > 0)
		close(fd);
	return ret;
}

static int cmd_show(const char *input, const char *dir, const char *tls_key)
{
	static char obuf[1 << 16];
	struct json j;
	int ret;

	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	json_init(&j, stdout);
	ret = dir ? show_dir(&j, dir, tls_key) : show_input(&j, input, tls_key);
	/* after an error, what was printed stays as it is (not valid JSON) */
	if (ret ? fflush(stdout) : json_finish(&j)) {
		pr_perror("cannot write to stdout");
		ret = -1;
	}
	return ret;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	const char *dir = NULL, *input = NULL, *tls_key = NULL, *cmd;
	bool ack_given = false, require_sealed = false, chain = false, lazy = false;
	bool reader_copies = false;
	int ack_fd = -1, chain_fd = -1, lazy_req_fd = -1, lazy_resp_fd = -1, opt;

	log_init(argv[0]);
	/* write errors, EPIPE included, are reported and not fatal signals */
	signal(SIGPIPE, SIG_IGN);

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":D:i:o:v::hV", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'D':
			dir = optarg;
			break;
		case 'i':
			input = optarg;
			break;
		case OPT_TLS_KEY:
			tls_key = optarg;
			break;
		case OPT_ACK_FD:
			if (opt_fd("--ack-fd", optarg, &ack_fd))
				return 1;
			ack_given = true;
			break;
		case OPT_CHAIN_FD:
			if (opt_fd("--chain-fd", optarg, &chain_fd))
				return 1;
			if (chain_fd <= 2 || fcntl(chain_fd, F_GETFD) < 0) {
				pr_err("--chain-fd %d: not an open descriptor above 2", chain_fd);
				return 1;
			}
			break;
		case OPT_REQUIRE_SEALED:
			require_sealed = true;
			break;
		case OPT_LAZY_PAGES:
			lazy = true;
			break;
		case OPT_READER_COPIES:
			reader_copies = true;
			break;
		case OPT_LAZY_REQ_FD:
		case OPT_LAZY_RESP_FD: {
			int *fd = opt == OPT_LAZY_REQ_FD ? &lazy_req_fd : &lazy_resp_fd;
			const char *name = opt == OPT_LAZY_REQ_FD ? "--lazy-req-fd" : "--lazy-resp-fd";

			if (opt_fd(name, optarg, fd))
				return 1;
			if (*fd <= 2 || fcntl(*fd, F_GETFD) < 0) {
				pr_err("%s %d: not an open descriptor above 2", name, *fd);
				return 1;
			}
			break;
		}
		case OPT_CHAIN:
			chain = true;
			break;
		case 'v':
			if (set_verbosity(optarg))
				return 1;
			break;
		case OPT_VERBOSITY:
			if (set_verbosity(optarg))
				return 1;
			break;
		case 'o':
			if (log_set_file(optarg)) {
				pr_perror("cannot open log file %s", optarg);
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			print_version(log_prog());
			return 0;
		case ':':
			pr_err("option %s needs an argument", argv[optind - 1]);
			usage(stderr);
			return 1;
		default:
			if (optopt)
				pr_err("unknown option -%c", optopt);
			else
				pr_err("unknown option %s", argv[optind - 1]);
			usage(stderr);
			return 1;
		}
	}
	if (optind >= argc) {
		pr_err("no command given: expected unpack, pack or show");
		usage(stderr);
		return 1;
	}
	cmd = argv[optind++];
	if (strcmp(cmd, "unpack") && strcmp(cmd, "pack") && strcmp(cmd, "show") &&
	    strcmp(cmd, "dedup") && strcmp(cmd, "chain")) {
		pr_err("unknown command '%s': expected unpack, pack, show, dedup or chain", cmd);
		usage(stderr);
		return 1;
	}
	if (chain && strcmp(cmd, "pack")) {
		pr_err("--chain is an option of pack only");
		return 1;
	}
	if (lazy && strcmp(cmd, "pack") && strcmp(cmd, "chain")) {
		pr_err("--lazy-pages is an option of pack and chain only");
		return 1;
	}
	if ((lazy_req_fd >= 0 || lazy_resp_fd >= 0) && (!lazy || strcmp(cmd, "chain"))) {
		pr_err("--lazy-req-fd and --lazy-resp-fd are options of chain --lazy-pages");
		return 1;
	}
	if (lazy && !strcmp(cmd, "chain") && (lazy_req_fd < 0 || lazy_resp_fd < 0)) {
		pr_err("chain --lazy-pages serves the pages: --lazy-req-fd and --lazy-resp-fd "
		       "are needed");
		return 1;
	}
	if (reader_copies && (strcmp(cmd, "pack") || chain)) {
		pr_err("--reader-copies is an option of pack without --chain only");
		return 1;
	}
	if (chain && lazy) {
		pr_err("--chain and --lazy-pages: a chain is packed as stored, not for a restore");
		return 1;
	}
	if ((chain_fd >= 0 || require_sealed) && strcmp(cmd, "chain")) {
		pr_err("%s is an option of chain only",
		       chain_fd >= 0 ? "--chain-fd" : "--require-sealed");
		return 1;
	}
	if (!strcmp(cmd, "chain")) {
		struct chain_stream_opts co = {
			tls_key, require_sealed, chain_fd, lazy, lazy_req_fd, lazy_resp_fd,
		};

		if (input || dir || ack_given || optind < argc) {
			pr_err("chain reads stdin and takes only --tls-key, --require-sealed, "
			       "--chain-fd and the --lazy-* options");
			return 1;
		}
		return chain_stream_run(&co) ? 1 : 0;
	}

	if (strcmp(cmd, "show")) {
		if (input || tls_key) {
			pr_err("%s is an option of show only", input ? "--input" : "--tls-key");
			return 1;
		}
		if (!dir) {
			pr_err("%s needs the images directory: -D DIR", cmd);
			return 1;
		}
		if (optind < argc) {
			pr_err("unexpected argument '%s'", argv[optind]);
			return 1;
		}
	}
	if (ack_given && strcmp(cmd, "unpack")) {
		pr_err("--ack-fd is an option of unpack only");
		return 1;
	}

	if (!strcmp(cmd, "unpack")) {
		if (ack_given) {
			if (ack_fd == 0) {
				pr_err("--ack-fd 0: stdin carries the image stream");
				return 1;
			}
			if (fcntl(ack_fd, F_GETFD) < 0) {
				pr_perror("--ack-fd %d", ack_fd);
				return 1;
			}
		}
		return cmd_unpack(dir, ack_fd) ? 1 : 0;
	}
	if (!strcmp(cmd, "pack"))
		return cmd_pack(dir, chain, lazy, reader_copies) ? 1 : 0;
	if (!strcmp(cmd, "dedup")) {
		uint64_t bytes;

		if (chain_dedup(dir, &bytes))
			return 1;
		pr_info("%s: %llu bytes of page data superseded in older links punched out", dir,
			(unsigned long long)bytes);
		return 0;
	}

	/* show [-i FILE | -D DIR | FILE | -] */
	if (optind < argc) {
		if (input || dir || optind + 1 < argc) {
			pr_err("show takes one input: -i FILE, -D DIR, FILE or -");
			return 1;
		}
		if (strcmp(argv[optind], "-"))
			input = argv[optind];
	}
	if (input && dir) {
		pr_err("show takes one input: -i FILE, -D DIR, FILE or -");
		return 1;
	}
	return cmd_show(input, dir, tls_key) ? 1 : 0;
}
