#!/usr/bin/perl
# A kept-open metadata reader built on exiftool's own library (Image::ExifTool).
#
# It answers what `exiftool -json -G0:1 -long -struct -D FILE` prints, less each tag's "desc" and the
# System tags (which describe our temp file), with "id" on EXIF tags only (the join to their stored
# directory entries), through the same stay_open protocol (argument lines, then "-executeN"; the
# answer, then "{readyN}"). tests/test_metadata.py holds it equal to the tool on every sample file.
#
# Why not the tool: for each file it reads, the tool also parses its options again, converts every tag
# twice for -long (printed, then numeric), names every tag's groups through GetGroup (which parses the
# family list each call), sorts by group and formats all of it: about a third of its CPU time per file
# (docs/benchmarks.md). This loop reads the file from memory, converts each tag once for both values,
# names groups from the tag tables directly and compiles exiftool's conversion strings once.
#
# Commands: "-ver" prints the library version; anything else is read as a file path (the last line).
# "-stay_open" "False" ends the loop, as it ends the tool's.
use strict;
use warnings;
use Image::ExifTool;
use Image::ExifTool::XMP;
use File::RandomAccess;

binmode STDIN;
binmode STDOUT;
$| = 1;

# exiftool evaluates a tag's conversion strings (RawConv, ValueConv, PrintConv) with eval for every value
# it converts, compiling each anew: about a tenth of the instructions per file. Once a tag has been found,
# its strings are compiled into subs, which exiftool calls as it calls conversions written as code.
my (%compiled, %compiled_tags);
# What each kind of conversion sees, as exiftool's eval would: the value ($val) and the ExifTool object
# ($self); a Composite tag's first conversion also the values it is made of (@val, as GetValue gives
# them), its RawConv the hash of their tag keys in $val and their raw values in @val (as FoundTag does).
my %ARGUMENTS = (
    value => 'my ($val, $self) = @_;',
    list => 'my ($__val, $self) = @_; my @val = @$__val; my $val = $val[0];',
    parts => 'my ($val, $self) = @_; my @val; if (ref $val eq "HASH") { $val[$_] = $$self{VALUE}{$$val{$_}} for keys %$val }',
    # A condition: GetTagInfo's arguments (the value, its format and count only where given).
    condition => 'my ($self, $tagTablePtr, $tagID, $valPt, $format, $count) = @_;',
);
sub compile_found_tags {
    my ($et) = @_;
    for my $info (values %{ $$et{TAG_INFO} }) {
        next if $compiled_tags{$info}++;
        if (not $$info{IsComposite}) {
            compile_conversion($info, $_, 'value') for qw(RawConv ValueConv PrintConv);
        } elsif ($$info{RawConv}) {
            # What a Composite tag's RawConv returns is converted further as a value or as a list, as it
            # happens: those conversions stay strings.
            compile_conversion($info, 'RawConv', 'parts');
        } else {
            # A Composite tag's first conversion is given the values it is made of, as @val.
            my $first = (defined $$info{ValueConv} or $$info{Binary}) ? 'ValueConv' : 'PrintConv';
            compile_conversion($info, $_, $_ eq $first ? 'list' : 'value') for qw(ValueConv PrintConv);
        }
    }
}
sub compile_conversion {
    my ($info, $type, $given) = @_;
    my $conv = $$info{$type};
    return if not defined $conv or ref $conv;
    my $code = $compiled{$given}{$conv} //= compiled($conv, $ARGUMENTS{$given}) || 0;
    $$info{$type} = $code if $code;
}
# A string using anything more (exiftool's other variables there, @_) fails under strict, and stays a
# string; one that dies gives its error as exiftool's eval would, as a warning.
sub compiled {
    my ($__code, $__arguments) = @_;
    return undef if $__code =~ /\@_|\$_\[/;
    return eval "package Image::ExifTool; use strict; no warnings; sub { $__arguments my \$value = eval {\n$__code\n}; "
        . "Image::ExifTool::SetWarning(\$@) if \$@; \$value }";
}

# exiftool chooses among a tag id's definitions by their Condition strings, eval'd for every tag it reads
# (about 4% of the instructions per file). Where each definition's condition compiles, they are
# evaluated as subs instead, in exiftool's order and with its warnings; any other case (unknown tags, a
# condition that does not compile) goes to exiftool's GetTagInfo before a condition is evaluated.
my %conditions;
my $get_tag_info = \&Image::ExifTool::GetTagInfo;
{
    no warnings 'redefine';
    *Image::ExifTool::GetTagInfo = sub ($$$;$$$) {
        my ($self, $table, $id, $valPt) = @_;
        my @infos = Image::ExifTool::GetTagInfoList($table, $id);
        for (@infos) {
            my $condition = $$_{Condition};
            goto &$get_tag_info if $$_{Unknown} or $condition and not ($conditions{$condition} //= compiled_condition($condition));
        }
        goto &$get_tag_info if $$self{OPTIONS}{Unknown} or $$self{OPTIONS}{Verbose};
        for my $info (@infos) {
            my $condition = $conditions{$$info{Condition} || return $info};
            return '' if $$condition[1] and not defined $valPt;
            local $SIG{'__WARN__'} = \&Image::ExifTool::SetWarning;
            Image::ExifTool::SetWarning(undef);
            return $info if $$condition[0]->(@_);
            $self->Warn("Condition $$info{Name}: " . Image::ExifTool::CleanWarning()) if Image::ExifTool::GetWarning();
        }
        return undef;
    };
}
# A condition naming the value is not evaluated without it, as in GetTagInfo.
sub compiled_condition {
    my ($code) = @_;
    my $sub = compiled($code, $ARGUMENTS{condition});
    return $sub ? [$sub, scalar($code =~ /\$(valPt|format|count)\b/)] : 0;
}

my $et = Image::ExifTool->new;
# As the tool sets them for -json -struct: every duplicate extracted (named apart by their groups),
# lists as lists, XMP structures as structures, binary values as placeholders.
$et->Options(Duplicates => 1, List => 1, Struct => 1);

use constant IN_MEMORY_BYTES => 16 * 1024 * 1024;

my %JSON_CHAR = ('"' => '"', "\t" => 't', "\n" => 'n', "\r" => 'r', '\\' => '\\');

# What exiftool's JSON writer leaves unquoted.
my $NUMBER = qr/^-?(?:\d|[1-9]\d{1,14})(?:\.\d{1,16})?(?:e[-+]?\d{1,3})?$/i;

# Whether a string must go through escape() rather than be quoted as it is (most values). tr/// and
# index() rather than one regex of alternatives, which tries each of them at every position of a long value.
sub needs_care {
    return ($_[0] =~ tr/\x20-\x7e//c or index($_[0], '"') >= 0 or index($_[0], '\\') >= 0
        or (length $_[0] <= 5 and $_[0] =~ /^(?:true|false)$/i));
}

sub escape {
    my ($str, $quote) = @_;
    unless ($quote) {
        return lc $str if $str =~ /^(true|false)$/i;
        return $str if $str =~ $NUMBER;
    }
    $str =~ s/(["\t\n\r\\])/\\$JSON_CHAR{$1}/sg;
    $str =~ tr/\0//d;
    $str =~ s/([\0-\x1f])/sprintf("\\u%.4X", ord $1)/sge;
    Image::ExifTool::XMP::FixUTF8(\$str);
    return qq("$str");
}

sub binary_placeholder {
    my ($ref) = @_;
    my $text = $$ref =~ /^Binary data \d+ bytes$/ ? $$ref : 'Binary data ' . length($$ref) . ' bytes';
    return "($text, use -b option to extract)";
}

sub format_json {
    my ($val) = @_;
    my $ref = ref $val;
    unless ($ref) {
        return $val if $val =~ $NUMBER;
        return needs_care($val) ? escape($val) : qq("$val");
    }
    return escape(binary_placeholder($val)) if $ref eq 'SCALAR';
    return '[' . join(',', map { format_json($_) } @$val) . ']' if $ref eq 'ARRAY';
    if ($ref eq 'HASH') {
        my @keys = $$val{_ordered_keys_} ? @{ $$val{_ordered_keys_} } : sort keys %$val;
        return '{' . join(',', map { escape($_, 1) . ':' . format_json($$val{$_}) } @keys) . '}';
    }
    return '"<err>"';
}

# A tag's numeric value is given only where it differs from the printed one (binary values never).
sub is_equal {
    my ($a, $b) = @_;
    return 1 if ref $a eq 'SCALAR' or (!ref $a and !ref $b and $a eq $b);
    if (ref $a eq 'HASH' and ref $b eq 'HASH') {
        return 0 if keys %$a != keys %$b;
        is_equal($$a{$_}, $$b{$_}) or return 0 for keys %$a;
        return 1;
    }
    return 0 if ref $a ne 'ARRAY' or ref $b ne 'ARRAY' or @$a != @$b;
    is_equal($$a[$_], $$b[$_]) or return 0 for 0 .. $#$a;
    return 1;
}

sub read_file {
    my ($path) = @_;
    # A file is read from memory, with its name kept for the type exiftool guesses from the extension
    # (MP3, AAC, TIFF-based RAWs). Reading it by name would also stat it for the System tags, which
    # describe our temp file and are dropped anyway: ~8% of the time per file. Large files (video) are
    # read by name, since exiftool reads only the parts it needs of them; so are ZIP containers (OOXML,
    # iWork), whose reader needs a file, or IO::String, for compressed members.
    my $data;
    if ((-s $path // 0) <= IN_MEMORY_BYTES and open my $file, '<:raw', $path) {
        $data = do { local $/; <$file> };
        close $file;
    }
    if (defined $data and $data !~ /^PK\x03\x04/) {
        $$et{RAF} = File::RandomAccess->new(\$data);
        $$et{FILENAME} = $path;
        $et->ExtractInfo();
    } else {
        $et->ExtractInfo($path);
    }
    compile_found_tags($et);
    # Tags come in file order; of several with one key ("EXIF:IFD0:Make", "EXIF:IFD0:Make (1)"), the tool
    # prints the priority tag (no copy number) if the key has one, else the first in the file.
    my (%chosen, @found);
    for my $tag ($et->GetFoundTags('File')) {
        my $key = group_key($tag);
        my $held = $chosen{$key};
        next if defined $held and (index($held, ' ') < 0 or index($tag, ' ') >= 0);
        # One conversion pass gives both values (ImageInfo would convert every tag, then -l again).
        my ($num, $val) = $et->GetValue($tag, 'Both');
        next unless defined $val;
        $chosen{$key} = $tag;
        push @found, [$tag, $key, $num, $val];
    }
    my @fields = (escape('SourceFile', 1) . ':' . escape($path));
    for (@found) {
        my ($tag, $key, $num, $val) = @$_;
        next if $chosen{$key} ne $tag;
        # Names come from the file too (XMP namespace prefixes), so they may need escaping.
        my $field = (needs_care($key) ? escape($key, 1) : qq("$key")) . ':{"val":' . format_json($val);
        if (defined $num and ((ref $num or ref $val) ? !is_equal($num, $val) : $num ne $val)) {
            $field .= ',"num":' . format_json($num);
        }
        # EXIF tags also carry their id (as -D prints it): processors/metadata.py joins them on it to the
        # stored directory entries of media/tiff.py.
        if (substr($key, 0, 5) eq 'EXIF:') {
            my $id = $et->GetTagID($tag);
            $field .= ',"id":' . escape($id) if length $id;
        }
        push @fields, "$field}";
    }
    return '[{' . join(',', @fields) . '}]';
}

# "Group0:Group1:Name" as GetGroup($tag, '0:1') names it, without its cost per call (it parses the
# family list and builds every family's name each time): family 0 and 1 from the tag's table, unless the
# file set them for this tag, and one name only where both families agree.
sub group_key {
    my ($tag) = @_;
    my $info = $$et{TAG_INFO}{$tag};
    $et->GetGroup($tag, 0) unless $info and $$info{GotGroups};
    my $groups = $info ? $$info{Groups} : {};
    my ($g0, $g1) = ($$groups{0}, $$groups{1});
    my $extra = $$et{TAG_EXTRA}{$tag};
    if ($extra) {
        $g0 = $$extra{G0} if $$extra{G0};
        $g1 = $$extra{G1} =~ /^\+(.*)/ ? "$g1$1" : $$extra{G1} if $$extra{G1};
    }
    my $copy = index($tag, ' ');
    my $name = $copy < 0 ? $tag : substr($tag, 0, $copy);
    return (!$g1 or $g1 eq $g0) ? "$g0:$name" : "$g0:$g1:$name";
}

my @args;
while (my $line = <STDIN>) {
    chomp $line;
    last if $line eq 'False' and @args and $args[-1] eq '-stay_open';
    if ($line =~ /^-execute(\d*)$/) {
        my $answer = @args && $args[0] eq '-ver' ? $Image::ExifTool::VERSION : read_file($args[-1] // '');
        print "$answer\n{ready$1}\n";
        @args = ();
    } else {
        push @args, $line;
    }
}
